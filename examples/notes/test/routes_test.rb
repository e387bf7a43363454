# frozen_string_literal: true

require_relative "test_helper"

# The app's routes, called directly (no sockets).
class RoutesTest < Minitest::Test
  include ServiceHelpers

  def test_up_answers_ok_without_any_service
    assert_equal ["200 OK", "ok\n"], Routes.new({}).call("GET", "/up")
  end

  def test_root_answers_200
    status, body = Routes.new({}).call("GET", "/")
    assert_equal "200 OK", status
    assert_match(/notes/, body)
  end

  def test_unknown_paths_and_verbs
    assert_equal "404 Not Found", Routes.new({}).call("GET", "/nope").first
    assert_equal "405 Method Not Allowed", Routes.new({}).call("POST", "/notes").first
  end

  def test_notes_is_unavailable_without_the_service_urls
    status, body = Routes.new({ "REDIS_URL" => "redis://cache:6379/0" }).call("GET", "/notes")
    assert_equal "503 Service Unavailable", status
    assert_equal "/notes needs DATABASE_URL and REDIS_URL; not set: DATABASE_URL\n", body
  end

  def test_notes_is_unavailable_when_a_server_does_not_answer
    env = { "DATABASE_URL" => "postgres://postgres:x@127.0.0.1:1/db", "REDIS_URL" => "redis://127.0.0.1:1/0" }
    status = body = nil
    _, err = capture_io { status, body = Routes.new(env).call("GET", "/notes") }
    assert_equal "503 Service Unavailable", status
    assert_equal "/notes: the database or the cache is unavailable\n", body
    assert_match(/Connection refused/, err)
  end

  def test_notes_lists_the_notes_and_counts_its_requests
    env = { "DATABASE_URL" => database_url, "REDIS_URL" => redis_url }
    db = TinyPG.connect(database_url)
    store = NoteStore.new(db).setup
    note = %(Bobby's "notes" table; DROP TABLE notes; --)
    id = store.add(note)
    before = TinyRedis.connect(redis_url).then { |redis| redis.get(Routes::COUNTER).to_i.tap { redis.close } }

    status, body = Routes.new(env).call("GET", "/notes")

    assert_equal "200 OK", status
    assert_includes body, "#{id}. #{note}\n"
    assert_includes body, "(#{before + 1} requests to /notes so far)"
  ensure
    store&.delete(id) if id
    db&.close
  end
end
