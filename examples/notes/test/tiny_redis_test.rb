# frozen_string_literal: true

require_relative "test_helper"

# TinyRedis against the Redis server named by REDIS_URL.
class TinyRedisTest < Minitest::Test
  include ServiceHelpers

  def setup
    @redis = TinyRedis.connect(redis_url)
    @key = "tinyredis-test:#{Process.pid}:#{name}"
  end

  def teardown
    @redis&.del(@key)
    @redis&.close
  end

  def test_ping
    assert_equal "PONG", @redis.ping
  end

  def test_incr_get_del
    assert_nil @redis.get(@key)
    assert_equal 1, @redis.incr(@key)
    assert_equal 2, @redis.incr(@key)
    assert_equal "2", @redis.get(@key)
    assert_equal 1, @redis.del(@key)
    assert_nil @redis.get(@key)
    assert_equal 0, @redis.del(@key)
  end

  def test_set_keeps_bytes_and_unicode
    value = "it's \"quoted\"\r\n and ünïcödé"
    assert_equal "OK", @redis.set(@key, value)
    assert_equal value, @redis.get(@key)
  end

  def test_an_error_reply_raises
    @redis.set(@key, "not a number")
    error = assert_raises(TinyRedis::Error) { @redis.incr(@key) }
    assert_match(/not an integer/, error.message)
    assert_equal "PONG", @redis.ping
  end
end

# TinyRedis.parse_url: no server needed.
class TinyRedisUrlTest < Minitest::Test
  def test_parses_redis_urls
    assert_equal({ host: "cache", port: 6380, db: 2, username: nil, password: "s:cret" },
                 TinyRedis.parse_url("redis://:s%3Acret@cache:6380/2"))
    assert_equal({ host: "cache", port: 6379, db: 0, username: nil, password: nil },
                 TinyRedis.parse_url("redis://cache"))
  end
end
