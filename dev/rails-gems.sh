#!/usr/bin/env bash
# The gems of examples/rails (Rails 7.2.2.2, Puma, nokogiri, ...) as real .gem files in its
# vendor/cache, made from what a fresh machine here can reach: Debian 13's archive, never the gem
# registry. Sourced by services.sh, which defines DEV_HOME, BASE_REF, RUBY_DIR, say, die, aptx and
# trixie_lists; rails_gems_up does the work.
#
# Sources (versions pinned below: when Debian moves on, this fails naming the pin, instead of
# silently making gems that no longer match the committed Gemfile.lock):
#   * Debian source packages, their .orig tarball only (upstream trees with their gemspecs): the
#     Rails components, puma, nokogiri, bindex; packed from their own gemspec.
#   * Debian binary packages of pure-Ruby gems: the gemspec Debian installs under
#     rubygems-integration/ plus the gem's files, repacked.
#   * Ruby 3.3.8's release tarball (the one services.sh keeps for the ruby layer): its bundled gems
#     under .bundle/ (rake, racc, debug, net-imap/pop/smtp).
#   * nio4r (Puma needs it): Debian's source is not served; its binary package has the Ruby half
#     only, so it is repacked WITHOUT its C extension and works with NIO4R_PURE=true only.
# The packing (dev/rails-gems.rb) runs in a throw-away container of the base OS image with
# Debian's `ruby` apt-installed, so it needs no imgbuild image and gives the same bytes on every
# machine (see rails-gems.rb). Cached under $DEV_HOME/rails-gems: the downloads, and the built
# gems under a key of these two files; a run with the key unchanged only compares vendor/cache
# with them (well under a second) and writes nothing when they agree.

RAILS_GEMS_DIR="$DEV_HOME/rails-gems"
RAILS_GEMS_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RAILS_GEMS_OUT="$(cd "$RAILS_GEMS_HERE/.." && pwd)/examples/rails/vendor/cache"
RAILS_GEMS_EPOCH=1735689600   # 2025-01-01: file times in the .gem files, fixed

# Debian source packages (only their .orig tarball is used: the archive here serves it, while the
# .dsc / .debian.tar.* of several answer 404; Debian's patches are not wanted anyway).
RAILS_GEMS_SRC=(
  "rails=2:7.2.2.2+dfsg-2~deb13u2"
  "puma=6.6.0-4"
  "ruby-nokogiri=1.18.2+dfsg-1"
  "ruby-bindex=0.8.1+ds-2"
)
# Rails components packed (actioncable needs the C extensions of nio4r and websocket-driver,
# activerecord a database adapter; neither can be built from what is served here).
RAILS_GEMS_COMPONENTS=(activesupport activemodel actionpack actionview activejob actionmailer railties)
# Debian binary packages of pure-Ruby gems.
RAILS_GEMS_DEBS=(
  ruby-builder=3.2.4-2 ruby-concurrent=1.3.5-1 ruby-connection-pool=2.4.1-1 ruby-crass=1.0.6-1
  ruby-erubi=1.12.0-1 ruby-globalid=1.2.1-2 ruby-i18n=1.14.7-1 ruby-loofah=2.24.0-1
  ruby-mail=2.8.1+dfsg1-2 ruby-mini-mime=1.1.5-1 ruby-mini-portile2=2.8.7-1 ruby-minitest=5.25.4-3
  ruby-rack=3.1.20-0+deb13u2 ruby-rack-session=2.1.1-0.1+deb13u1 ruby-rack-test=2.2.0-1
  ruby-rackup=2.1.0-4 ruby-rails-dom-testing=2.2.0-1 ruby-rails-html-sanitizer=1.6.2-1
  ruby-rails-propshaft=1.1.0-3 ruby-thor=1.3.2-2.1 ruby-tzinfo=2.0.6-1 ruby-useragent=0.16.8-1.1
  ruby-web-console=4.2.1-1 ruby-webrick=1.9.1-1 ruby-zeitwerk=2.6.8-1 ruby-jbuilder=2.12.0-1
  ruby-nio4r=2.7.3-1+b2
)
RAILS_GEMS_SKIP=(concurrent-ruby-edge)   # in ruby-concurrent's package, not wanted
# Ruby's bundled gems (minitest comes from Debian instead: Ruby 3.3's 5.20.0 loads mutex_m, which
# warns on every rake run).
RAILS_GEMS_RUBY_TGZ=ruby-3.3.8.tar.gz        # services.sh's copy, when its Ruby series is 3.3
RAILS_GEMS_RUBY_SRC="ruby3.3=3.3.8-2"         # else Debian's orig of the same tree
RAILS_GEMS_BUNDLED=(debug net-imap net-pop net-smtp racc rake)

rg_orig() {  # rg_orig PKG=VERSION: the cached orig tarball (empty when not downloaded)
  local pkg=${1%%=*} ver=${1#*=}
  ver=${ver#*:}; ver=${ver%-*}
  ls "$RAILS_GEMS_DIR/src/${pkg}_${ver}.orig.tar."* 2>/dev/null | head -n1
}
rg_deb() { local pkg=${1%%=*} ver=${1#*=}; ls "$RAILS_GEMS_DIR/debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n1; }

# rg_fetch KIND LOG PIN...: one apt call for all (apt reads its 40 MB of lists on every call).
# A pin the archive no longer has fails naming it; the lists are refreshed once before that
# verdict, since services.sh keeps them from its first run.
rg_fetch() {
  local kind=$1 log=$2 refreshed="" p gone
  shift 2
  while :; do
    trixie_lists
    if [[ $kind == source ]]; then
      # apt's status is not the verdict: it fails on the 404 of a .dsc whose orig arrived.
      (cd "$RAILS_GEMS_DIR/src" && aptx source --download-only "$@" >"$log" 2>&1) || true
      rm -f "$RAILS_GEMS_DIR/src/"*.dsc "$RAILS_GEMS_DIR/src/"*.debian.tar.*
    else
      (cd "$RAILS_GEMS_DIR/debs" && aptx download "$@" >"$log" 2>&1) || true
    fi
    gone=()
    for p in "$@"; do
      if [[ $kind == source ]]; then [[ -n "$(rg_orig "$p")" ]] || gone+=("$p")
      else [[ -n "$(rg_deb "$p")" ]] || gone+=("$p"); fi
    done
    ((${#gone[@]})) || return 0
    [[ -z "$refreshed" ]] || break
    refreshed=1; rm -f "$TRIXIE/.updated"
  done
  # Name the pin apt could not find; else the first that did not arrive.
  for p in "$@"; do
    if grep -qxF -e "E: Can not find version '${p#*=}' of package '${p%%=*}'" \
        -e "E: Version '${p#*=}' for '${p%%=*}' was not found" -e "E: Unable to locate package ${p%%=*}" "$log"; then
      die "$p is gone from Debian trixie's archive: pin the version it has in dev/rails-gems.sh and regenerate examples/rails (REGENERATE.md)"
    fi
  done
  die "could not download $kind package ${gone[0]} from Debian trixie ($(grep -m1 '^E: ' "$log" || echo "see $log"))"
}

rails_gems_up() {
  local key built="$RAILS_GEMS_DIR/gems" out=$RAILS_GEMS_OUT work p f b changed=0 removed=0
  key=$(cat "$RAILS_GEMS_HERE/rails-gems.sh" "$RAILS_GEMS_HERE/rails-gems.rb" | sha256sum | cut -c1-16)
  if [[ "$(cat "$built/.key" 2>/dev/null)" != "$key" ]]; then
    local t0=$SECONDS
    mkdir -p "$RAILS_GEMS_DIR/src" "$RAILS_GEMS_DIR/debs"
    local ruby_tgz="$RUBY_DIR/$RAILS_GEMS_RUBY_TGZ"
    if [[ ! -f "$ruby_tgz" ]]; then
      [[ -n "$(rg_orig "$RAILS_GEMS_RUBY_SRC")" ]] || rg_fetch source "$RAILS_GEMS_DIR/src/apt.log" "$RAILS_GEMS_RUBY_SRC"
      ruby_tgz=$(rg_orig "$RAILS_GEMS_RUBY_SRC")
    fi
    local missing=()
    for p in "${RAILS_GEMS_SRC[@]}"; do [[ -n "$(rg_orig "$p")" ]] || missing+=("$p"); done
    ((${#missing[@]} == 0)) || rg_fetch source "$RAILS_GEMS_DIR/src/apt.log" "${missing[@]}"
    missing=()
    for p in "${RAILS_GEMS_DEBS[@]}"; do [[ -n "$(rg_deb "$p")" ]] || missing+=("$p"); done
    ((${#missing[@]} == 0)) || rg_fetch binary "$RAILS_GEMS_DIR/debs/apt.log" "${missing[@]}"

    # Unpack into a fresh work tree.
    work="$RAILS_GEMS_DIR/work"
    rm -rf "$work" && mkdir -p "$work/src" "$work/debs" "$work/ruby" "$work/bin" "$work/out"
    local members
    for p in "${RAILS_GEMS_SRC[@]}"; do
      members=()   # rails: only the components packed (its tree also holds guides, tests, JS)
      [[ ${p%%=*} == rails ]] && members=(--wildcards --no-wildcards-match-slash '*/RAILS_VERSION' "${RAILS_GEMS_COMPONENTS[@]/#/*/}")
      mkdir -p "$work/src/${p%%=*}" && tar -xf "$(rg_orig "$p")" -C "$work/src/${p%%=*}" "${members[@]}"
    done
    members=('*/.bundle/specifications')
    for b in "${RAILS_GEMS_BUNDLED[@]}"; do members+=("*/.bundle/gems/$b-[0-9]*"); done
    tar -xf "$ruby_tgz" -C "$work/ruby" --strip-components=1 --wildcards --no-wildcards-match-slash "${members[@]}"
    for p in "${RAILS_GEMS_DEBS[@]}"; do dpkg-deb -x "$(rg_deb "$p")" "$work/debs/${p%%=*}"; done
    # Release tarballs carry no .git: a stand-in for the `git ls-files` that some gemspecs call
    # (puma, bindex). An unpacked `git archive` tree holds exactly the tracked files.
    cat >"$work/bin/git" <<'EOF'
#!/bin/sh
[ "$1" = ls-files ] || { echo "git stand-in: only 'ls-files' is supported (got: $*)" >&2; exit 1; }
shift; z=
while [ $# -gt 0 ]; do
  case $1 in -z) z=1 ;; --) shift; break ;; -*) ;; *) break ;; esac; shift
done
[ $# -gt 0 ] || set -- .
find "$@" -type f ! -path '*/.git/*' 2>/dev/null | sed 's|^\./||' | LC_ALL=C sort \
  | if [ -n "$z" ]; then tr '\n' '\0'; else cat; fi
EOF
    chmod +x "$work/bin/git"
    {
      for b in "${RAILS_GEMS_COMPONENTS[@]}"; do echo "gemspec src/rails/*/$b/$b.gemspec rails(source)"; done
      echo "gemspec src/puma/*/puma.gemspec puma(source)"
      echo "gemspec src/ruby-nokogiri/*/nokogiri.gemspec ruby-nokogiri(source)"
      echo "gemspec src/ruby-bindex/*/bindex.gemspec ruby-bindex(source)"
      for p in "${RAILS_GEMS_DEBS[@]}"; do echo "deb debs/${p%%=*} ${p}(deb)"; done
      for b in "${RAILS_GEMS_BUNDLED[@]}"; do echo "bundled $b ruby-3.3.8(.bundle)"; done
    } >"$work/plan"
    printf '%s\n' "${RAILS_GEMS_SKIP[@]}" >"$work/skip"
    cp "$RAILS_GEMS_HERE/rails-gems.rb" "$work/"

    say "packing the Rails example's gems (Debian's ruby in a container of $BASE_REF)"
    docker run --rm -v "$work:/w" -w /w -e SOURCE_DATE_EPOCH="$RAILS_GEMS_EPOCH" \
      -e PATH=/w/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      -e DEBIAN_FRONTEND=noninteractive -e OWNER="$(id -u):$(id -g)" "$BASE_REF" bash -ec '
        { apt-get update -q && apt-get install -y -q --no-install-recommends ruby; } >/w/apt.log 2>&1 \
          || { tail -n 5 /w/apt.log >&2; exit 1; }
        ruby rails-gems.rb /w/out
        chown -R "$OWNER" /w/out' || die "packing the Rails example's gems failed"
    # The committed checksums are what examples/rails/Gemfile.lock was made from; other bytes
    # (another packer, a changed pin) still install, but give the base layer another key.
    if ! (cd "$work/out" && sha256sum *.gem | LC_ALL=C sort -k2 | cmp -s - "$RAILS_GEMS_HERE/rails-gems.sha256"); then
      say "warning: the packed gems differ from dev/rails-gems.sha256 (update it when a pin changes)"
    fi
    rm -rf "$built.tmp" && mv "$work/out" "$built.tmp"
    echo "$key" >"$built.tmp/.key"
    rm -rf "$built" && mv "$built.tmp" "$built" && rm -rf "$work"
    say "packed $(ls "$built"/*.gem | wc -l) gems in $((SECONDS - t0)) s (sources: $built/manifest.tsv)"
  fi
  # vendor/cache = exactly the built gems; only what differs is written.
  mkdir -p "$out"
  for f in "$built"/*.gem; do
    b=$(basename "$f")
    cmp -s "$f" "$out/$b" || { cp "$f" "$out/$b.tmp" && mv "$out/$b.tmp" "$out/$b"; changed=$((changed + 1)); }
  done
  for f in "$out"/*.gem; do
    [[ -e "$f" && ! -e "$built/$(basename "$f")" ]] || continue
    rm -f "$f"; removed=$((removed + 1))
  done
  ((changed + removed == 0)) || say "examples/rails/vendor/cache: $changed gem(s) written, $removed removed"
}
