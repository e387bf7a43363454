# dev/rails-new-edits.rb STEP: the hand edits of examples/rails after `rails new` and `rails
# generate` (run by dev/rails-new.sh in the app's directory). Everything else in the example is
# what the generators wrote; examples/rails/REGENERATE.md lists these edits with their reasons.
def edit(path)
  src = File.read(path)
  out = yield(src.dup) or abort "rails-new-edits: #{path}: the generated text has changed"
  File.write(path, out)
end

case ARGV.fetch(0)
when "gemfile"
  # Rails' component gems instead of the "rails" meta-gem, whose actioncable needs the C
  # extensions of nio4r and websocket-driver (their C sources are not in Debian's archive as
  # served here); the list is what config/application.rb requires.
  components = %w[activesupport activemodel activejob actionpack actionview actionmailer railties]
  edit("Gemfile") do |src|
    line = src[/^gem "rails", .*\n/] or abort "rails-new-edits: no rails gem line in Gemfile"
    src.sub(line, "# #{line}" + <<~RB + components.map { |c| %(gem "#{c}", "~> 7.2.2", ">= 7.2.2.2"\n) }.join)
      # Offline build (imgbuild example): Rails' component gems instead of the "rails" meta-gem, which
      # also pulls in actioncable (C extensions of nio4r and websocket-driver) and activerecord & co.
      # These are the frameworks config/application.rb loads.
    RB
  end
when "prune"
  # vendor/cache keeps exactly the .gem files of Gemfile.lock (Ruby's default gems have none).
  locked = File.read("Gemfile.lock").scan(/^    (\S+) \((\S+)\)$/).map { |n, v| "#{n}-#{v}.gem" }
  extra = Dir["vendor/cache/*.gem"].reject { |f| locked.include?(File.basename(f)) }
  warn "rails-new-edits: not in Gemfile.lock: #{extra.map { |f| File.basename(f) }.join(' ')}" unless extra.empty?
when "page"
  edit("config/routes.rb") { |s| s.sub!(%(  # root "posts#index"\n), %(  # root "posts#index"\n  root "pages#home"\n)) }
  File.write("app/assets/stylesheets/application.css", <<~CSS)
    /* Application styles */
    body { font-family: system-ui, sans-serif; margin: 2rem; background: #fdfaf3; }
    h1 { color: #b3261e; }
  CSS
when "production"
  # Rails' own switch: /up answers without TLS (a load balancer's health check speaks plain HTTP
  # to the container), everything else stays behind force_ssl.
  edit("config/environments/production.rb") do |s|
    s.sub!(%(  # config.ssl_options = { redirect: { exclude: ->(request) { request.path == "/up" } } }\n),
           %(  config.ssl_options = { redirect: { exclude: ->(request) { request.path == "/up" } } }\n))
  end
  # nio4r (Puma's reactor) is vendored without its C extension: select its pure-Ruby backend
  # before Puma loads it.
  edit("config/puma.rb") do |s|
    anchor = %(threads_count = ENV.fetch("RAILS_MAX_THREADS", 3)\n)
    s.sub!(anchor, <<~RB + "\n" + anchor)
      # nio4r, which Puma uses to wait on idle connections, is vendored without its C extension:
      # this example's gems are built offline from Debian's archive, which does not serve nio4r's
      # C sources (see README.md). Its pure-Ruby selector does the same job; Puma loads nio4r when
      # it starts serving, after reading this file.
      ENV["NIO4R_PURE"] ||= "true"
    RB
  end
  # The app image needs none of the .gem files: imgbuild installs them in the base image.
  edit(".dockerignore") do |s|
    s.sub!(%(# Ignore bundler config.\n/.bundle\n),
           %(# Ignore bundler config.\n/.bundle\n\n# Gems are installed in the base image (imgbuild) from vendor/cache.\n/vendor/cache/\n))
  end
else
  abort "usage: rails-new-edits.rb gemfile|prune|page|production"
end
