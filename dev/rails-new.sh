#!/usr/bin/env bash
# dev/rails-new.sh OUT_DIR: generate examples/rails again from nothing, offline, with Rails' own
# `rails new` and `rails generate`, from the .gem files that `make services` put in
# examples/rails/vendor/cache, then apply the hand edits (dev/rails-new-edits.rb). Compare the
# result with the committed example (examples/rails/REGENERATE.md):
#
#   bash dev/rails-new.sh /tmp/rails-new && diff -r /tmp/rails-new examples/rails
#
# Runs in a throw-away container of a Ruby 3.3.8 image: $RUBY_IMAGE, else the example's own ruby
# layer, built or found by imgbuild ($IMGBUILD, default `imgbuild`; needs the dev env sourced).
# The container gets a compiler and git from Debian's archive (apt cache under the dev home).
set -euo pipefail
OUT=${1:?usage: dev/rails-new.sh OUT_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEV_HOME=${IMGBUILD_DEV_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/imgbuild-dev}
GEMS="$ROOT/examples/rails/vendor/cache"
die() { printf 'rails-new: error: %s\n' "$*" >&2; exit 1; }

[[ ! -e "$OUT" ]] || die "$OUT exists; remove it first"
ls "$GEMS"/railties-*.gem >/dev/null 2>&1 || die "no gems in $GEMS: run 'make services' first"
if [[ -z "${RUBY_IMAGE:-}" ]]; then
  RUBY_IMAGE=$(${IMGBUILD:-imgbuild} -c "$ROOT/examples/rails/imgbuild.yaml" ruby --json \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["layers"][-1]["image"])')
fi
APTC="$DEV_HOME/rails-new-apt"
mkdir -p "$APTC/lists" "$APTC/archives" "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
WORK=$(mktemp -d "$(dirname "$OUT")/.rails-new.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The generator command line. The app directory is named like the example's; --name gives the
# module (RailsDemo: `Rails` is taken).
RAILS_NEW="rails _7.2.2.2_ new rails --name=rails_demo --skip-active-record --skip-action-cable --skip-javascript --skip-bootsnap --skip-brakeman --skip-rubocop --skip-system-test --skip-ci --asset-pipeline=propshaft --skip-bundle"

docker run --rm -v "$GEMS:/gems:ro" -v "$ROOT/dev:/dev-scripts:ro" -v "$WORK:/work" \
  -v "$APTC/lists:/var/lib/apt/lists" -v "$APTC/archives:/var/cache/apt/archives" \
  -e RAILS_NEW="$RAILS_NEW" -e OWNER="$(id -u):$(id -g)" -w /work "$RUBY_IMAGE" bash -euo pipefail -c '
export DEBIAN_FRONTEND=noninteractive
ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -q >/dev/null
# git: `rails new` runs `git init` (and so writes .gitignore); the rest builds nokogiri, racc,
# puma, bindex and debug for the generator and for `bundle install`.
apt-get install -y -q --no-install-recommends -o Binary::apt::APT::Keep-Downloaded-Packages=true \
  build-essential pkg-config libxml2-dev libxslt1-dev zlib1g-dev git >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }
export NOKOGIRI_USE_SYSTEM_LIBRARIES=1 GEM_HOME=/tmp/gen PATH=/tmp/gen/bin:$PATH
(cd /gems && gem install --local --no-document railties -v 7.2.2.2 >/tmp/gem.log 2>&1) || { cat /tmp/gem.log; exit 1; }
echo "+ $RAILS_NEW"
$RAILS_NEW >/tmp/new.log
cd rails
ruby /dev-scripts/rails-new-edits.rb gemfile
mkdir -p vendor/cache && cp /gems/*.gem vendor/cache/
unset GEM_HOME; export PATH=${PATH#/tmp/gen/bin:} BUNDLE_PATH=/tmp/bundle
# --no-cache: the cache refresh that follows an install wants .gem files for Ruby default gems
# (base64-0.2.0.gem ...) and exits 7 without them.
bundle install --local --no-cache >/tmp/bundle.log 2>&1 || { cat /tmp/bundle.log; exit 1; }
ruby /dev-scripts/rails-new-edits.rb prune
echo "+ bin/rails generate controller Pages home"
bin/rails generate controller Pages home >/tmp/generate.log
ruby /dev-scripts/rails-new-edits.rb page
ruby /dev-scripts/rails-new-edits.rb production
# Not committed: the example lives in another repository (.git), vendor/cache is made by
# `make services`, tmp/ and log/ hold what the generators left, and the credentials key is a
# secret (without it credentials.yml.enc is noise; production reads SECRET_KEY_BASE).
rm -rf .git vendor/cache tmp/cache tmp/local_secret.txt log/*.log config/master.key config/credentials.yml.enc
chown -R "$OWNER" /work'
mv "$WORK/rails" "$OUT"
echo "rails-new: $OUT ready; hand-written files of examples/rails not generated: README.md REGENERATE.md imgbuild.yaml" >&2
