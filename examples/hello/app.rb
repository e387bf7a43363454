# frozen_string_literal: true

# imgbuild's example app: a tiny HTTP server on Ruby's stdlib only (Ruby 3.3 ships no webrick).
#   GET /        -> 200, a line built from the bundled gems (tinydep, tinynative)
#   GET /health  -> 200 "ok"
#   anything else -> 404
# Listens on ENV["PORT"] (default 8080) and exits promptly on SIGTERM/SIGINT.
require "bundler/setup"
require "socket"
require "yaml"

ROOT = __dir__
$LOAD_PATH.unshift(File.join(ROOT, "lib"))
require "greeting"
require "routes"
require_relative "app/models/user"

$stdout.sync = true
config = YAML.safe_load_file(File.join(ROOT, "config", "app.yml"))
routes = Routes.new(Greeting.new(config, User.new(config.fetch("user"))))
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
puts "hello: listening on #{bind}:#{port} (ruby #{RUBY_VERSION}, pid #{Process.pid})"
loop do
  ready, = IO.select([server, stop_r])
  break if ready.include?(stop_r)

  client = server.accept_nonblock(exception: false)
  Thread.new(client) { |c| serve(c, routes) } unless client == :wait_readable
end
server.close
puts "hello: got #{stop_r.read_nonblock(16, exception: false)}, stopped"
