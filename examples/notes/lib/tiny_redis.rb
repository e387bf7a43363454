# frozen_string_literal: true

require "socket"
require "uri"

# A small Redis client on Ruby's stdlib: RESP2 over plain TCP. #call sends any command; an error
# reply raises TinyRedis::Error, bulk strings come back as UTF-8 Strings, nil for a missing key.
module TinyRedis
  class Error < StandardError; end

  # redis://[[user]:password@]host[:port][/db]
  def self.parse_url(url)
    uri = URI.parse(url)
    raise ArgumentError, "not a redis:// URL: #{url}" unless uri.scheme == "redis"

    db = uri.path.to_s.delete_prefix("/")
    user = URI.decode_uri_component(uri.user.to_s)
    { host: uri.host || "localhost", port: uri.port || 6379, db: db.empty? ? 0 : Integer(db, 10),
      username: user.empty? ? nil : user,
      password: uri.password && URI.decode_uri_component(uri.password) }
  end

  def self.connect(url) = Client.new(**parse_url(url))

  # One connection. Not thread-safe: use one client per thread.
  class Client
    def initialize(host: "localhost", port: 6379, db: 0, username: nil, password: nil, timeout: 5)
      @socket = Socket.tcp(host, port, connect_timeout: timeout)
      @socket.timeout = timeout # reads and writes: IO::TimeoutError rather than a hang
      call("AUTH", *username, password) if password
      call("SELECT", db) unless db.zero?
    rescue StandardError
      @socket&.close
      raise
    end

    def call(*args)
      command = String.new("*#{args.size}\r\n", encoding: Encoding::BINARY)
      args.each { |arg| command << "$#{arg.to_s.bytesize}\r\n" << arg.to_s.b << "\r\n" }
      @socket.write(command)
      reply = read_reply
      raise reply if reply.is_a?(Error)

      reply
    end

    def ping = call("PING")
    def get(key) = call("GET", key)
    def set(key, value) = call("SET", key, value)
    def incr(key) = call("INCR", key)
    def del(*keys) = call("DEL", *keys)
    def flushdb = call("FLUSHDB")
    def close = @socket.close

    private

    def read_reply
      line = @socket.gets("\r\n") or raise Error, "the server closed the connection"
      payload = line.byteslice(1..).chomp("\r\n")
      case line[0]
      when "+" then payload.force_encoding(Encoding::UTF_8)
      when "-" then Error.new(payload.force_encoding(Encoding::UTF_8)) # raised by #call
      when ":" then Integer(payload)
      when "$" then Integer(payload).negative? ? nil : read_bulk(Integer(payload))
      when "*" then Integer(payload).negative? ? nil : Array.new(Integer(payload)) { read_reply }
      else raise Error, "unexpected reply from the server: #{line.inspect}"
      end
    end

    def read_bulk(length)
      data = @socket.read(length + 2)
      raise Error, "the server closed the connection" if data.nil? || data.bytesize < length + 2

      data.byteslice(0, length).force_encoding(Encoding::UTF_8)
    end
  end
end
