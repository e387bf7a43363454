# frozen_string_literal: true

# imgbuild's example of an app with services: a tiny HTTP server on Ruby's stdlib only, with a
# PostgreSQL and a Redis client of its own in lib/ (no gems at run time; the Gemfile's only gem,
# minitest, is for the tests).
#   GET /       -> 200, one line about the app
#   GET /up     -> 200 "ok", touching no service (like Rails' /up)
#   GET /notes  -> 200, the notes in PostgreSQL (DATABASE_URL) and a request count kept in Redis
#                  (REDIS_URL); 503 when either variable is unset or its server unreachable
#   anything else -> 404 (405 for another verb)
# Listens on ENV["PORT"] (default 8080) and exits promptly on SIGTERM/SIGINT.
require "socket"

ROOT = __dir__
$LOAD_PATH.unshift(File.join(ROOT, "lib"))
require "routes"

$stdout.sync = true
routes = Routes.new(ENV)
port = Integer(ENV.fetch("PORT", "8080"))
bind = ENV.fetch("BIND", "0.0.0.0")

# Signal handlers only write to a pipe; the accept loop sees it and stops (self-pipe trick).
stop_r, stop_w = IO.pipe
%w[TERM INT].each do |signal|
  Signal.trap(signal) { stop_w.write_nonblock(signal, exception: false) }
end

def serve(client, routes)
  client.timeout = 5
  request_line = client.gets("\n", 8192).to_s
  while (line = client.gets("\n", 8192)) && !line.strip.empty?
    # headers are read and ignored
  end
  verb, target = request_line.split(" ", 3)
  status, body = routes.call(verb, target.to_s.split("?", 2).first)
  client.write("HTTP/1.1 #{status}\r\nContent-Type: text/plain; charset=utf-8\r\n" \
               "Content-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n#{body}")
  puts "#{verb} #{target} -> #{status.split.first}"
rescue IOError, SystemCallError => e
  warn "request failed: #{e.class}: #{e.message}"
ensure
  client.close
end

server = TCPServer.new(bind, port)
services = %w[DATABASE_URL REDIS_URL].map { |name| "#{name} #{ENV[name].to_s.empty? ? "unset" : "set"}" }
puts "notes: listening on #{bind}:#{port} (ruby #{RUBY_VERSION}, pid #{Process.pid}; #{services.join(", ")})"
loop do
  ready, = IO.select([server, stop_r])
  break if ready.include?(stop_r)

  client = server.accept_nonblock(exception: false)
  Thread.new(client) { |c| serve(c, routes) } unless client == :wait_readable
end
server.close
puts "notes: got #{stop_r.read_nonblock(16, exception: false)}, stopped"
