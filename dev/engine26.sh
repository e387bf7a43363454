#!/usr/bin/env bash
# A second, modern Docker engine beside the system one: Debian 13's docker.io 26 (BuildKit 0.13)
# with its containerd 1.7 and the containerd image store on. Sourced by services.sh, which
# defines DEV_HOME, say, die and trixie_deb. Idempotent: a second run only checks the socket.
#
# Everything is its own: data root, exec root, pidfile, socket, containerd (root, state, socket)
# and bridge (imgb26-N, not docker0, so neither daemon deletes or rewires the other's). It runs in
# the host's network namespace so it reaches the loopback registry, moto and gem servers exactly
# as the system engine does; its containers reach Debian's archive through one MASQUERADE rule
# of ours (iptables=false keeps it out of the system daemon's chains).
#
# The system runc is used: trixie's runc needs glibc 2.38, which Debian 12 lacks.

E26_DIR="$DEV_HOME/engine26"
E26_SOCK="$E26_DIR/run/docker.sock"
E26_HOST="unix://$E26_SOCK"
# One bridge and subnet per dev home, so the fresh set-up check's engine never shares addresses
# with the warm one's.
E26_N=$(printf %s "$DEV_HOME" | cksum | awk '{print $1 % 200 + 20}')
E26_BRIDGE=imgb26-$E26_N
E26_CIDR=172.30.$E26_N.1/24
E26_BIN="$E26_DIR/root/usr/bin:$E26_DIR/root/usr/sbin"

e26_answers() { timeout 10 docker -H "$E26_HOST" version >/dev/null 2>&1; }

e26_unpack() {
  [[ -x "$E26_DIR/root/usr/sbin/dockerd" && -x "$E26_DIR/root/usr/bin/containerd" ]] && return
  say "fetching Docker 26 and containerd 1.7 from Debian trixie (engine 26)"
  local tmp="$E26_DIR/root.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  trixie_deb docker.io "$tmp/docker"
  trixie_deb containerd "$tmp/containerd"
  mkdir -p "$tmp/merged/usr/bin" "$tmp/merged/usr/sbin"
  cp -a "$tmp/docker/usr/sbin/dockerd" "$tmp/docker/usr/sbin/docker-proxy" "$tmp/merged/usr/sbin/"
  cp -a "$tmp/containerd/usr/bin/." "$tmp/merged/usr/bin/"
  rm -rf "$E26_DIR/root" && mv "$tmp/merged" "$E26_DIR/root" && rm -rf "$tmp"
}

e26_bridge() {
  if ! ip link show "$E26_BRIDGE" >/dev/null 2>&1; then
    ip link add "$E26_BRIDGE" type bridge
    ip addr add "$E26_CIDR" dev "$E26_BRIDGE"
  fi
  ip link set "$E26_BRIDGE" up
  local net
  net=$(ip -o -4 route show dev "$E26_BRIDGE" proto kernel | awk '{print $1}' | head -n1)
  [[ -n "$net" ]] || die "bridge $E26_BRIDGE has no IPv4 network; delete it (ip link del $E26_BRIDGE) and rerun"
  sysctl -qw net.ipv4.ip_forward=1
  iptables -t nat -C POSTROUTING -s "$net" ! -o "$E26_BRIDGE" -j MASQUERADE 2>/dev/null \
    || iptables -t nat -A POSTROUTING -s "$net" ! -o "$E26_BRIDGE" -j MASQUERADE
  iptables -C FORWARD -i "$E26_BRIDGE" -j ACCEPT 2>/dev/null \
    || iptables -I FORWARD -i "$E26_BRIDGE" -j ACCEPT
  iptables -C FORWARD -o "$E26_BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT 2>/dev/null \
    || iptables -I FORWARD -o "$E26_BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
}

e26_containerd() {
  local ctd_sock="$E26_DIR/run/containerd.sock"
  [[ -S "$ctd_sock" ]] && timeout 5 "$E26_DIR/root/usr/bin/ctr" -a "$ctd_sock" version >/dev/null 2>&1 \
    && return
  mkdir -p "$E26_DIR/run" "$E26_DIR/containerd"
  cat >"$E26_DIR/containerd.toml" <<EOF
version = 2
root = "$E26_DIR/containerd/root"
state = "$E26_DIR/run/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ctd_sock"
[ttrpc]
  address = "$ctd_sock.ttrpc"
[debug]
  address = "$E26_DIR/run/containerd-debug.sock"
EOF
  PATH="$E26_BIN:$PATH" setsid nohup containerd --config "$E26_DIR/containerd.toml" \
    >"$E26_DIR/containerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 100); do
    timeout 5 "$E26_DIR/root/usr/bin/ctr" -a "$ctd_sock" version >/dev/null 2>&1 && return
    sleep 0.2
  done
  die "engine 26: containerd did not answer on $ctd_sock; see $E26_DIR/containerd.log"
}

e26_dockerd() {
  drop_stale_pidfile "$E26_DIR/run/docker.pid" "$E26_DIR/daemon.json"  # services.sh
  cat >"$E26_DIR/daemon.json.tmp" <<EOF
{"features": {"containerd-snapshotter": true}}
EOF
  mv "$E26_DIR/daemon.json.tmp" "$E26_DIR/daemon.json"
  PATH="$E26_BIN:$PATH" setsid nohup dockerd --config-file "$E26_DIR/daemon.json" \
    --containerd "$E26_DIR/run/containerd.sock" --data-root "$E26_DIR/data" \
    --exec-root "$E26_DIR/run/exec" --pidfile "$E26_DIR/run/docker.pid" -H "$E26_HOST" \
    --bridge "$E26_BRIDGE" --iptables=false --ip-masq=false --ip6tables=false \
    >"$E26_DIR/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    e26_answers && return
    sleep 0.5
  done
  die "engine 26 did not answer on $E26_HOST within 60 s; see $E26_DIR/dockerd.log"
}

engine26_up() {
  if [[ "${IMGBUILD_DEV_ENGINE26:-on}" == off ]]; then
    E26_HOST=""
    return
  fi
  e26_answers && return
  mkdir -p "$E26_DIR/run"
  e26_unpack
  e26_bridge
  e26_containerd
  say "starting engine 26 on $E26_HOST (log: $E26_DIR/dockerd.log)"
  e26_dockerd
}
