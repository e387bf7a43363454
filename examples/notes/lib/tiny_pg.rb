# frozen_string_literal: true

require "digest"
require "socket"
require "uri"
require_relative "tiny_pg/scram"

# A small PostgreSQL client on Ruby's stdlib: protocol 3.0 over plain TCP (no TLS); authentication
# trust, cleartext, MD5 or SCRAM-SHA-256; the simple query protocol (#exec, several statements
# allowed) and the extended one with text parameters (#exec_params: values travel apart from the
# SQL, never spliced into it). int2/int4/int8/oid columns come back as Integers, bool as
# true/false, NULL as nil, everything else as UTF-8 Strings.
module TinyPG
  # An ErrorResponse from the server (#fields by code: "S" severity, "C" SQLSTATE, "M" message)
  # or a protocol problem (no fields).
  class Error < StandardError
    attr_reader :fields

    def initialize(message, fields = {})
      super(message)
      @fields = fields
    end

    def code = fields["C"]
  end

  # columns: names; values: one array per row; tag: the command tag, e.g. "SELECT 2", "INSERT 0 1".
  Result = Struct.new(:columns, :values, :tag) do
    def rows = values.map { |row| columns.zip(row).to_h }
  end

  # postgres://user:password@host:port/database (user and password percent-encoded).
  def self.parse_url(url)
    uri = URI.parse(url)
    raise ArgumentError, "not a postgres:// URL: #{url}" unless %w[postgres postgresql].include?(uri.scheme)

    user = URI.decode_uri_component(uri.user.to_s)
    user = "postgres" if user.empty?
    database = URI.decode_uri_component(uri.path.to_s.delete_prefix("/"))
    { host: uri.host || "localhost", port: uri.port || 5432, user:,
      password: uri.password && URI.decode_uri_component(uri.password),
      database: database.empty? ? user : database }
  end

  def self.connect(url) = Connection.new(**parse_url(url))

  # One session; not thread-safe (one connection per thread).
  class Connection
    attr_reader :auth_method, :parameters

    def initialize(host:, user:, port: 5432, password: nil, database: user, connect_timeout: 10)
      @user = user
      @password = password
      @parameters = {}
      @socket = Socket.tcp(host, port, connect_timeout:)
      startup(database)
    rescue StandardError
      @socket&.close
      raise
    end

    def exec(sql)
      send_message("Q", cstr(sql))
      read_results
    end

    # Parse (unnamed statement, parameter types inferred), Bind, Describe, Execute, Sync.
    def exec_params(sql, params)
      values = params.map { |v| v.nil? ? [-1].pack("l>") : [v.to_s.bytesize].pack("l>") + v.to_s.b }
      send_message("P", cstr("") + cstr(sql) + [0].pack("n"))
      send_message("B", cstr("") + cstr("") + [0, params.size].pack("nn") + values.join.b + [0].pack("n"))
      send_message("D", "P#{cstr("")}")
      send_message("E", cstr("") + [0].pack("N"))
      send_message("S", "")
      read_results
    end

    def close
      send_message("X", "") unless @socket.closed?
    rescue IOError, SystemCallError
      nil
    ensure
      @socket.close
    end

    private

    def startup(database)
      params = { user: @user, database:, client_encoding: "UTF8", application_name: "tinypg" }
      body = [196_608].pack("N") + params.map { |k, v| cstr(k) + cstr(v) }.join.b + "\0"
      @socket.write([body.bytesize + 4].pack("N"), body)
      loop do
        type, body = read_message
        case type
        when "R" then authenticate(body.unpack1("N"), body.byteslice(4..))
        when "S" then parameter_status(body)
        when "E" then raise server_error(body)
        when "Z" then return
        end # K (the cancel key) and N (notices) are not needed
      end
    end

    def authenticate(request, data)
      case request
      when 0 then @auth_method ||= "trust"
      when 3
        @auth_method = "cleartext"
        send_message("p", cstr(password!))
      when 5 # data: a 4-byte salt
        @auth_method = "md5"
        inner = Digest::MD5.hexdigest(password! + @user)
        send_message("p", cstr("md5#{Digest::MD5.hexdigest(inner + data)}"))
      when 10 # data: the mechanisms the server offers
        mechanisms = data.split("\0")
        unless mechanisms.include?("SCRAM-SHA-256")
          raise Error, "the server offers #{mechanisms.join(", ")}, not SCRAM-SHA-256"
        end

        @auth_method = "scram-sha-256"
        @scram = Scram.new(password!)
        first = @scram.client_first
        send_message("p", cstr("SCRAM-SHA-256") + [first.bytesize].pack("N") + first)
      when 11 then send_message("p", @scram.client_final(data))
      when 12 then @scram.verify_server_final(data)
      else raise Error, "unsupported authentication request #{request}"
      end
    end

    def password! = @password || raise(Error, "the server asks for a password and none was given")

    # Reads up to ReadyForQuery; returns the last statement's result or raises the first error.
    def read_results
      result = error = nil
      columns, types, rows = [], [], []
      loop do
        type, body = read_message
        case type
        when "T" then columns, types = row_description(body)
        when "D" then rows << data_row(body, types)
        when "C"
          result = Result.new(columns, rows, body.unpack1("Z*"))
          columns, types, rows = [], [], []
        when "I" then result = Result.new([], [], "")
        when "E" then error ||= server_error(body)
        when "S" then parameter_status(body)
        when "Z" then error ? raise(error) : (return result)
        end # 1, 2, n (parse/bind complete, no data) and N (notices) need nothing
      end
    end

    def row_description(body)
      offset = 2
      fields = Array.new(body.unpack1("n")) do
        name = body.unpack1("Z*", offset:)
        type = body.unpack1("N", offset: offset + name.bytesize + 7) # after table OID, column number
        offset += name.bytesize + 19
        [name.force_encoding(Encoding::UTF_8), type]
      end
      [fields.map(&:first), fields.map(&:last)]
    end

    def data_row(body, types)
      offset = 2
      types.map do |type|
        length = body.unpack1("l>", offset:)
        text = length.negative? ? nil : body.byteslice(offset + 4, length).force_encoding(Encoding::UTF_8)
        offset += 4 + [length, 0].max
        case type
        when 20, 21, 23, 26 then text && Integer(text) # int8, int2, int4, oid
        when 16 then text && text == "t"               # bool
        else text
        end
      end
    end

    def server_error(body)
      fields = body.scan(/([^\0])([^\0]*)\0/n).to_h { |k, v| [k, v.force_encoding(Encoding::UTF_8)] }
      Error.new("#{fields["S"]}: #{fields["M"]} (SQLSTATE #{fields["C"]})", fields)
    end

    def parameter_status(body) = @parameters.store(*body.unpack("Z*Z*"))

    def cstr(text) = "#{text}\0".b

    def send_message(type, body) = @socket.write(type, [body.bytesize + 4].pack("N"), body)

    def read_message
      type, length = read_exactly(5).unpack("aN")
      [type, read_exactly(length - 4)]
    end

    def read_exactly(count)
      data = @socket.read(count)
      raise Error, "the server closed the connection" if data.nil? || data.bytesize < count

      data
    end
  end
end
