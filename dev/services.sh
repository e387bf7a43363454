#!/usr/bin/env bash
# Idempotent bring-up of what imgbuild's demo and tests need on a Debian 12 or 13 machine:
#   Docker engine (+ buildx), a registry on loopback, the base OS image in that registry,
#   the Ruby release tarball and ruby-build, both from Debian's archive (no other network needed),
#   the Rails example's gems in examples/rails/vendor/cache, made from Debian's archive too, and
#   PostgreSQL and Redis service images for `imgbuild verify` (built from Debian's packages).
# A second run only checks and takes seconds. Everything lives under $IMGBUILD_DEV_HOME.
set -euo pipefail

DEV_HOME=${IMGBUILD_DEV_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/imgbuild-dev}
mkdir -p "$DEV_HOME"
# The registry address: asked for, else the one this dev home chose before, else 127.0.0.1:5000
# (section 5 moves a new dev home to a free port when another dev home's registry holds 5000).
REGISTRY=${IMGBUILD_DEV_REGISTRY:-$(cat "$DEV_HOME/registry-address" 2>/dev/null || echo 127.0.0.1:5000)}
RUBY_SERIES=${IMGBUILD_DEV_RUBY_SERIES:-3.3}
export DEBIAN_FRONTEND=noninteractive

say() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }

# The mirror this machine's apt already uses (never hard-coded: the archive host is the system's choice).
debian_mirror() {
  if [[ -n "${IMGBUILD_DEV_MIRROR:-}" ]]; then echo "$IMGBUILD_DEV_MIRROR"; return; fi
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
        | grep -v '^[[:space:]]*#' \
        | grep -oE '(https?|file)://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ')
  [[ -n "$uri" ]] || die "no Debian mirror found in /etc/apt/sources.list*; set IMGBUILD_DEV_MIRROR"
  echo "${uri%/}"
}

# --- 1. packages ---------------------------------------------------------------------------------
need_pkgs=()
for p in docker.io docker-registry apache2-utils debootstrap xz-utils curl ca-certificates dpkg-dev \
         chromium; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done
# Debian 13 ships the docker CLI as its own package (docker.io only recommends it); Debian 12's
# docker.io includes it and has no docker-cli package.
if ! command -v docker >/dev/null 2>&1; then
  [[ -d /var/lib/apt/lists/partial ]] && ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 \
    || apt-get update -q >/dev/null
  apt-cache show docker-cli >/dev/null 2>&1 && need_pkgs+=(docker-cli)
fi
if ((${#need_pkgs[@]})); then
  say "installing ${need_pkgs[*]}"
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- 2. Docker engine ----------------------------------------------------------------------------
# A daemon killed without cleaning up (a CI machine after the session that started it) leaves its
# pidfile; once that PID is reused by another process, dockerd refuses to start. A pidfile whose
# process is not that dockerd is stale: remove it.
drop_stale_pidfile() {  # drop_stale_pidfile PIDFILE WORD: WORD must be in the live process's argv
  local pid argv=""
  pid=$(cat "$1" 2>/dev/null) || return 0
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] && argv=$(tr '\0' ' ' <"/proc/$pid/cmdline")
  [[ "$argv" == *"$2"* ]] || rm -f "$1"
}
if ! timeout 10 docker version >/dev/null 2>&1; then
  drop_stale_pidfile /var/run/docker.pid dockerd
  say "starting dockerd (log: $DEV_HOME/dockerd.log)"
  setsid nohup dockerd >"$DEV_HOME/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    timeout 5 docker version >/dev/null 2>&1 && break
    sleep 0.5
  done
  timeout 10 docker version >/dev/null 2>&1 || die "dockerd did not answer within 60 s; see $DEV_HOME/dockerd.log"
fi

# A second dockerd started with --bridge=none deletes the host's docker0 (moby's
# removeDefaultBridgeInterface); builds then fail with "could not find bridge docker0". Put it back.
if ! ip link show docker0 >/dev/null 2>&1; then
  gw=$(docker network inspect bridge --format '{{(index .IPAM.Config 0).Gateway}}' 2>/dev/null || true)
  say "docker0 is missing; recreating it (${gw:-172.17.0.1})"
  ip link add docker0 type bridge && ip addr add "${gw:-172.17.0.1}/16" dev docker0 && ip link set docker0 up
fi

# --- 3. trixie apt lists (buildx on bookworm, Ruby source, ruby-build) ------------------------------
TRIXIE="$DEV_HOME/apt-trixie"
aptx() {
  apt-get -q -o Dir::Etc::SourceList="$TRIXIE/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$TRIXIE/lists" -o Dir::Cache="$TRIXIE/cache" \
    -o APT::Sandbox::User=root "$@"
}
trixie_lists() {
  [[ -f "$TRIXIE/.updated" ]] && return
  local mirror; mirror=$(debian_mirror)
  mkdir -p "$TRIXIE/lists/partial" "$TRIXIE/cache/archives/partial" "$TRIXIE/debs"
  cat >"$TRIXIE/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main
EOF
  say "fetching trixie package lists"
  aptx update >/dev/null
  touch "$TRIXIE/.updated"
}
trixie_deb() {  # trixie_deb PKG DESTDIR: download PKG's .deb and unpack it into DESTDIR
  trixie_lists
  (cd "$TRIXIE/debs" && rm -f "$1"_*.deb && aptx download "$1" >/dev/null)
  rm -rf "$2" && mkdir -p "$2" && dpkg -x "$TRIXIE/debs/$1"_*.deb "$2"
}

# --- 4. buildx -----------------------------------------------------------------------------------
if ! docker buildx version >/dev/null 2>&1; then
  # System-wide plugin dir: found by every docker CLI, whatever DOCKER_CONFIG a run uses.
  plugdir=/usr/local/libexec/docker/cli-plugins
  mkdir -p "$plugdir"
  # (the policy is read whole first: grep -q would close the pipe early, and pipefail
  # would turn that SIGPIPE into "no candidate")
  policy=$(apt-cache policy docker-buildx 2>/dev/null || true)
  if [[ "$policy" == *"Candidate: "[0-9]* ]]; then
    apt-get install -y -q docker-buildx >/dev/null
  else
    say "installing docker-buildx from Debian trixie as a CLI plugin"
    trixie_deb docker-buildx "$DEV_HOME/buildx"
    install -m 0755 "$DEV_HOME/buildx/usr/libexec/docker/cli-plugins/docker-buildx" "$plugdir/docker-buildx"
  fi
  docker buildx version >/dev/null || die "docker buildx still missing after install"
fi

# --- 4b. engine 26: Debian 13's Docker 26 beside the system engine (dev/engine26.sh) ------------
# shellcheck source=dev/engine26.sh
source "$(dirname "$0")/engine26.sh"
engine26_up

# --- 5. registry on loopback ---------------------------------------------------------------------
reg_dir() { echo "$DEV_HOME/registry-${1//[:\/]/_}"; }
answers() { curl -fsS -o /dev/null "http://$1/v2/" 2>/dev/null; }
ours() { pgrep -f "docker-registry serve $(reg_dir "$1")/config.yml" >/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# No in-memory blob-descriptor cache: it answered a lost layer link as present, so the registry
# stored a manifest it could not serve (dev/registry_fsck.py); the filesystem is fast enough.
# A fresh dev home (the fresh set-up check) must not reuse another dev home's registry data: when
# the default address answers with someone else's registry, take a free port and remember it.
if [[ -z "${IMGBUILD_DEV_REGISTRY:-}" && ! -f "$DEV_HOME/registry-address" ]] \
   && answers "$REGISTRY" && ! ours "$REGISTRY"; then
  REGISTRY="127.0.0.1:$(free_port)"
  say "another dev home's registry holds 127.0.0.1:5000; this one uses $REGISTRY"
fi
echo "$REGISTRY" >"$DEV_HOME/registry-address"
BASE_REF=${IMGBUILD_DEV_BASE_IMAGE:-$REGISTRY/debian:bookworm}
REG_DIR=$(reg_dir "$REGISTRY")
if ! answers "$REGISTRY"; then
  mkdir -p "$REG_DIR/data"
  cat >"$REG_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
  python3 "$(dirname "$0")/registry_fsck.py" "$REG_DIR/data"  # links lost behind the last run's back
  say "starting docker-registry on $REGISTRY"
  setsid nohup docker-registry serve "$REG_DIR/config.yml" >"$REG_DIR/registry.log" 2>&1 </dev/null &
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://$REGISTRY/v2/" 2>/dev/null && break
    sleep 0.1
  done
  curl -fsS -o /dev/null "http://$REGISTRY/v2/" || die "registry on $REGISTRY did not answer; see $REG_DIR/registry.log"
fi

# --- 6. base OS image ----------------------------------------------------------------------------
if ! docker pull -q "$BASE_REF" >/dev/null 2>&1; then
  ROOTFS_TAR="$DEV_HOME/debian-bookworm-rootfs.tar"
  if [[ ! -s "$ROOTFS_TAR" ]]; then
    say "building a bookworm base image with debootstrap (about a minute)"
    root="$DEV_HOME/rootfs.tmp"
    rm -rf "$root"
    debootstrap --variant=minbase bookworm "$root" "$(debian_mirror)" >"$DEV_HOME/debootstrap.log" 2>&1 \
      || die "debootstrap failed; see $DEV_HOME/debootstrap.log"
    # Slim it like debian:*-slim: no docs, man pages or apt lists, and dpkg keeps them out later.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
           "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
    printf 'APT::Install-Recommends "false";\n' >"$root/etc/apt/apt.conf.d/99no-recommends"
    tar --numeric-owner -C "$root" -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    rm -rf "$root"
  fi
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "$ROOTFS_TAR" "$BASE_REF" >/dev/null
  docker push -q "$BASE_REF" >/dev/null || die "could not push $BASE_REF"
  say "base image $BASE_REF ready"
fi

# --- 6b. service images for `imgbuild verify` (dev/service-images.sh) ----------------------------
# PostgreSQL and Redis from Debian's packages on the base OS image (Docker Hub's are out of reach).
# shellcheck source=dev/service-images.sh
source "$(dirname "$0")/service-images.sh"
service_images_up

# --- 7. Ruby source and ruby-build from Debian's archive -----------------------------------------
RUBY_DIR="$DEV_HOME/ruby"
if ! ls "$RUBY_DIR"/ruby-"$RUBY_SERIES".*.tar.gz >/dev/null 2>&1; then
  trixie_lists
  say "fetching the Ruby $RUBY_SERIES release tarball from Debian's source archive"
  mkdir -p "$RUBY_DIR/src"
  (cd "$RUBY_DIR/src" && aptx source --download-only "ruby$RUBY_SERIES" >/dev/null)
  orig=$(ls "$RUBY_DIR"/src/ruby"$RUBY_SERIES"_*.orig.tar.xz | head -n1)
  ver=$(basename "$orig" | sed -E 's/^ruby[0-9.]+_([0-9.]+)(\+[^.]*)?\.orig\.tar\.xz$/\1/')
  # ruby-build only extracts .tar.gz/.tar.bz2; gzip -n from stdin is deterministic (no name/mtime).
  xz -dc "$orig" | gzip -6 -n >"$RUBY_DIR/ruby-$ver.tar.gz.tmp"
  mv "$RUBY_DIR/ruby-$ver.tar.gz.tmp" "$RUBY_DIR/ruby-$ver.tar.gz"
  rm -rf "$RUBY_DIR/src"
fi
if [[ ! -x "$DEV_HOME/ruby-build/bin/ruby-build" ]]; then
  say "fetching ruby-build from Debian trixie"
  trixie_deb ruby-build "$DEV_HOME/ruby-build.deb"
  rm -rf "$DEV_HOME/ruby-build"
  mkdir -p "$DEV_HOME/ruby-build/bin" "$DEV_HOME/ruby-build/share"
  cp "$DEV_HOME/ruby-build.deb/usr/bin/ruby-build" "$DEV_HOME/ruby-build/bin/"
  cp -r "$DEV_HOME/ruby-build.deb/usr/share/ruby-build" "$DEV_HOME/ruby-build/share/"
  rm -rf "$DEV_HOME/ruby-build.deb"
fi

ruby_tgz=$(ls "$RUBY_DIR"/ruby-"$RUBY_SERIES".*.tar.gz | head -n1)
ruby_ver=$(basename "$ruby_tgz" .tar.gz); ruby_ver=${ruby_ver#ruby-}
# One file for make/tests/demo to source: where everything is.
cat >"$DEV_HOME/env.tmp" <<EOF
export IMGBUILD_DEV_HOME=$DEV_HOME
export IMGBUILD_DEV_REGISTRY=$REGISTRY
export IMGBUILD_DEV_BASE_IMAGE=$BASE_REF
export IMGBUILD_DEV_RUBY_VERSION=$ruby_ver
export IMGBUILD_DEV_RUBY_TARBALL=$ruby_tgz
export IMGBUILD_DEV_RUBY_BUILD=$DEV_HOME/ruby-build
export IMGBUILD_DEV_ENGINE26_HOST=$E26_HOST
export IMGBUILD_DEV_POSTGRES_IMAGE=$SERVICE_POSTGRES_IMAGE
export IMGBUILD_DEV_REDIS_IMAGE=$SERVICE_REDIS_IMAGE
EOF
mv "$DEV_HOME/env.tmp" "$DEV_HOME/env"

# --- 8. the Rails example's gems, from Debian's archive (dev/rails-gems.sh) ------------------------
# shellcheck source=dev/rails-gems.sh
source "$(dirname "$0")/rails-gems.sh"
rails_gems_up

say "ready: docker $(docker version --format '{{.Server.Version}}'), buildx $(docker buildx version | awk '{print $2}'), registry $REGISTRY, base $BASE_REF, ruby $ruby_ver${E26_HOST:+, engine 26 at $E26_HOST}"
