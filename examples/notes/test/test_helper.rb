# frozen_string_literal: true

# Loaded by every test file (bin/test loads them all). Puts lib/ on the load path, starts minitest
# (it runs the tests at exit and exits non-zero on a failure) and adds the JUnit reporter.
APP_ROOT = File.expand_path("..", __dir__)
$LOAD_PATH.unshift(File.join(APP_ROOT, "lib"))

require "minitest/autorun"
require_relative "support/junit_reporter"
require "note_store"
require "routes"
require "tiny_pg"
require "tiny_redis"

# The servers the tests use. Nothing is skipped without them: each test that needs one fails,
# naming the variable to set.
module ServiceHelpers
  def database_url = service_url("DATABASE_URL", "postgres://postgres:password@localhost:5432/notes_test")

  def redis_url = service_url("REDIS_URL", "redis://localhost:6379/0")

  def service_url(name, example)
    url = ENV[name].to_s
    return url unless url.empty?

    flunk "#{name} is not set: this test needs a real server, e.g. #{name}=#{example} (see README.md)"
  end
end
