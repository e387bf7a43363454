# frozen_string_literal: true

require "note_store"
require "tiny_pg"
require "tiny_redis"

# Maps a request to [status line, body]. /up and / touch no service (like Rails' /up); /notes
# lists the notes from PostgreSQL (DATABASE_URL) and counts its requests in Redis (REDIS_URL),
# connecting to both for each request.
class Routes
  OK = "200 OK"
  NOT_FOUND = "404 Not Found"
  NOT_ALLOWED = "405 Method Not Allowed"
  UNAVAILABLE = "503 Service Unavailable"
  COUNTER = "notes:requests"
  SERVICE_ERRORS = [TinyPG::Error, TinyRedis::Error, SystemCallError, IOError, SocketError].freeze

  def initialize(env = ENV)
    @env = env
  end

  def call(verb, path)
    return [NOT_ALLOWED, "only GET is served\n"] unless verb == "GET"

    case path
    when "/up" then [OK, "ok\n"]
    when "/" then [OK, "notes: a tiny app on PostgreSQL and Redis; GET /notes lists the notes\n"]
    when "/notes" then notes
    else [NOT_FOUND, "not found\n"]
    end
  end

  private

  def notes
    missing = %w[DATABASE_URL REDIS_URL].select { |name| @env[name].to_s.empty? }
    if missing.any?
      return [UNAVAILABLE, "/notes needs DATABASE_URL and REDIS_URL; not set: #{missing.join(", ")}\n"]
    end

    db = TinyPG.connect(@env["DATABASE_URL"])
    cache = TinyRedis.connect(@env["REDIS_URL"])
    count = cache.incr(COUNTER)
    list = NoteStore.new(db).setup.all
    lines = list.map { |note| "#{note["id"]}. #{note["body"]}\n" }
    [OK, "#{lines.empty? ? "no notes yet\n" : lines.join}(#{count} requests to /notes so far)\n"]
  rescue *SERVICE_ERRORS => e
    warn "/notes: #{e.class}: #{e.message}"
    [UNAVAILABLE, "/notes: the database or the cache is unavailable\n"]
  ensure
    db&.close
    cache&.close
  end
end
