#!/usr/bin/env bash
# Run a command in a Debian 13 (trixie) root on this machine, to prove the set-up's Debian 13
# branches where no Debian 13 machine is at hand:
#
#   bash dev/debian13-root.sh ROOT 'make -C /work/imgbuild services'
#
# ROOT is made with debootstrap on first use (minbase + what make needs). The root gets its own
# network namespace (its loopback registry, engines and ports never meet the host's), reaching
# Debian's archive and PyPI through a veth pair and one MASQUERADE rule, as a container would;
# its own mount and PID namespaces; the host's /dev, /sys and cgroups (entered with nsenter, not
# `ip netns exec`, which mounts a fresh /sys without the cgroup hierarchies dockerd needs). The
# command runs in /work/imgbuild, a fresh clone of this checkout's HEAD, as CI runs a clean clone
# of main: commit first. Everything the set-up writes stays under ROOT.
#
# Daemons started inside end with the command (its PID namespace).
set -euo pipefail
ROOT=${1:?usage: debian13-root.sh ROOT COMMAND}
CMD=${2:?usage: debian13-root.sh ROOT COMMAND}
REPO=$(cd "$(dirname "$0")/.." && pwd)
NS=imgb-d13
HOST_IF=imgbd13h
NET=10.213.13

say() { printf 'debian13-root: %s\n' "$*" >&2; }

mirror() {
  grep -hoE '(https?)://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
    | grep -v security | head -n1 | tr -d ' '
}

if [[ ! -x "$ROOT/usr/bin/make" ]]; then
  if [[ ! -x "$ROOT/usr/bin/apt-get" ]]; then
    say "debootstrap trixie into $ROOT"
    debootstrap --variant=minbase trixie "$ROOT" "$(mirror)" >"$ROOT.debootstrap.log" 2>&1
  fi
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  chroot "$ROOT" apt-get update -q >/dev/null
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    make python3 python3-venv git ca-certificates iproute2 procps iptables >/dev/null
fi

# The namespace and its way out (idempotent).
if ! ip netns list | grep -qw "$NS"; then
  ip netns add "$NS"
  ip link add "$HOST_IF" type veth peer name eth0 netns "$NS"
  ip addr add "$NET.1/30" dev "$HOST_IF"
  ip link set "$HOST_IF" up
  ip -n "$NS" addr add "$NET.2/30" dev eth0
  ip -n "$NS" link set eth0 up
  ip -n "$NS" link set lo up
  ip -n "$NS" route add default via "$NET.1"
fi
sysctl -qw net.ipv4.ip_forward=1
iptables -t nat -C POSTROUTING -s "$NET.0/30" ! -o "$HOST_IF" -j MASQUERADE 2>/dev/null \
  || iptables -t nat -A POSTROUTING -s "$NET.0/30" ! -o "$HOST_IF" -j MASQUERADE
iptables -C FORWARD -i "$HOST_IF" -j ACCEPT 2>/dev/null || iptables -I FORWARD -i "$HOST_IF" -j ACCEPT
iptables -C FORWARD -o "$HOST_IF" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT 2>/dev/null \
  || iptables -I FORWARD -o "$HOST_IF" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT

rm -rf "$ROOT/work/imgbuild" && mkdir -p "$ROOT/work"
git clone -q "$REPO" "$ROOT/work/imgbuild"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The host's own CAs (a proxy's, a company's) are trusted inside too, as on any machine of theirs.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  chroot "$ROOT" update-ca-certificates >/dev/null 2>&1
fi
exec nsenter --net=/run/netns/"$NS" unshare --mount --pid --fork --propagation private bash -c '
  set -e
  R=$1
  mount --bind "$R" "$R"  # a mount point, as a real root is: dockerd remounts / private
  mount --rbind /dev "$R/dev"
  mount --rbind /sys "$R/sys"
  mount -t proc proc "$R/proc"
  mount -t tmpfs tmpfs "$R/run"
  mount -t tmpfs tmpfs "$R/tmp"
  # pivot_root, not chroot: runc resolves bind-mount sources and exec namespaces against the
  # real root, so under a chroot `docker run -v` and `docker exec` would see the host.
  mkdir -p "$R/.oldroot"
  cd "$R" && pivot_root . .oldroot && umount -l /.oldroot
  cd / && exec env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TERM=dumb bash -lc "$2"
' _ "$ROOT" "$CMD"
