#!/bin/sh
# Rebuilds the example app's vendored gems (../vendor/cache/*.gem) from the sources next to this
# script, and optionally its Gemfile.lock. Nothing is fetched from the network: the build runs in
# the Ruby runtime image with --network=none (or with the host's `gem` when RUBY_IMAGE=host).
#
#   gems-src/build.sh            # build tinypure, tinydep, tinydev, tinynative into vendor/cache
#   gems-src/build.sh lock       # also regenerate Gemfile.lock (bundle install --local)
#
# Environment:
#   RUBY_IMAGE         image with Ruby/RubyGems/Bundler (default 127.0.0.1:5000/hello-ruby:latest);
#                      "host" runs the host's gem/bundle instead of docker
#   SOURCE_DATE_EPOCH  timestamp written into the gems (default 2024-01-01); fixed so the .gem
#                      files are byte-for-byte reproducible
#
# The .gem files are source gems (platform "ruby"): tinynative's C extension is compiled when it is
# installed, i.e. in the base image's build stage, which has the compiler.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
app=$(dirname "$here")
RUBY_IMAGE=${RUBY_IMAGE:-127.0.0.1:5000/hello-ruby:latest}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1704067200}
GEMS="tinypure tinydep tinydev tinynative"

# Runs a shell script with /app = the example app, offline.
run() {
  if [ "$RUBY_IMAGE" = host ]; then
    (cd "$app" && SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH sh -euc "$1")
  else
    docker run --rm --network=none --user "$(id -u):$(id -g)" \
      -e HOME=/tmp -e SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" \
      -v "$app:/app" -w /app "$RUBY_IMAGE" sh -euc "$1"
  fi
}

# Only the files each gemspec lists are packed; the gemspecs list them explicitly (no git ls-files).
run "
  mkdir -p vendor/cache
  for g in $GEMS; do
    v=\$(cd gems-src/\$g && ruby -e 'print Gem::Specification.load(ARGV[0]).version' \$g.gemspec)
    (cd gems-src/\$g && gem build --silent \$g.gemspec --output ../../vendor/cache/\$g-\$v.gem)
  done
  ls -l vendor/cache
"

if [ "${1:-}" = lock ]; then
  # The Gemfile names no source, so `bundle lock` resolves from vendor/cache alone and needs no
  # compiler (`bundle lock --local` does not look in vendor/cache on Bundler 2.5). It lists the
  # "ruby" and x86_64-linux platforms and BUNDLED WITH the image's Bundler.
  run '
    export BUNDLE_APP_CONFIG=/tmp/bundle-config
    rm -f Gemfile.lock
    bundle lock
    cat Gemfile.lock
  '
fi
