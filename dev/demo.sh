#!/usr/bin/env bash
# make demo: build and push the example apps' chains to the local registry, run each app image
# and show it answering: examples/hello, then the Rails app of examples/rails (Puma in production,
# smoke-checked by `imgbuild verify` before the push), then examples/notes, whose tests run
# against real PostgreSQL and Redis in its test variant before its image is pushed.
set -euo pipefail
VENV=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "${IMGBUILD_DEV_HOME:-$HOME/.cache/imgbuild-dev}/env"
IMGBUILD="$VENV/bin/imgbuild"
CONFIG="$ROOT/examples/hello/imgbuild.yaml"

"$IMGBUILD" -c "$CONFIG" plan
"$IMGBUILD" -c "$CONFIG" app --push --json > "$IMGBUILD_DEV_HOME/demo-result.json"
image=$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][-1]["image"])' \
        "$IMGBUILD_DEV_HOME/demo-result.json")
port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

echo "demo: running $image on 127.0.0.1:$port" >&2
cid=$(docker run -d --rm --network host -e PORT="$port" "$image")
containers=("$cid")
trap 'docker stop -t 2 "${containers[@]}" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 50); do
  if body=$(curl -fsS "http://127.0.0.1:$port/" 2>/dev/null); then break; fi
  sleep 0.2
done
[[ -n "${body:-}" ]] || { docker logs "$cid" >&2; echo "demo: the app did not answer" >&2; exit 1; }
echo "demo: GET / -> $body"
echo "demo: user in the container: $(docker exec "$cid" id -un)"

# --- the Rails example: Rails 7.2 + Puma in production, gems from Debian's archive --------------
RAILS_CONFIG="$ROOT/examples/rails/imgbuild.yaml"
# The secret arrives at boot, from the environment (nothing in the image or the repository).
secret=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(64))')
# --verify: the image boots and answers Rails' /up (verify.smoke) before anything is pushed.
SECRET_KEY_BASE="$secret" "$IMGBUILD" -c "$RAILS_CONFIG" app --push --verify --json \
  > "$IMGBUILD_DEV_HOME/demo-rails-result.json"
image=$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][-1]["image"])' \
        "$IMGBUILD_DEV_HOME/demo-rails-result.json")
port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "demo: running $image on 127.0.0.1:$port (RAILS_ENV=production, Puma)" >&2
cid=$(docker run -d --rm --network host -e PORT="$port" -e SECRET_KEY_BASE="$secret" "$image")
containers+=("$cid")
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/up" 2>/dev/null && break
  sleep 0.2
done
# force_ssl stays on: like a TLS-terminating load balancer, the demo says the request came in
# over https; Rails' health check /up answers plain HTTP too (examples/rails/README.md).
https=(-H "X-Forwarded-Proto: https")
check() {  # check LABEL URL_PATH [curl args]: print the status, fail unless 200
  local label=$1 path=$2 code; shift 2
  code=$(curl -sS -o /dev/null -w '%{http_code}' "$@" "http://127.0.0.1:$port$path" || true)
  echo "demo: rails: GET $path$label -> $code"
  [[ $code == 200 ]] || { docker logs "$cid" 2>&1 | tail -n 20 >&2; echo "demo: the Rails app did not answer 200" >&2; exit 1; }
}
check "" /up
check " (X-Forwarded-Proto: https)" / "${https[@]}"
css=$(curl -sS "${https[@]}" "http://127.0.0.1:$port/" | grep -o '<link rel="stylesheet" href="/assets/application-[0-9a-f]*\.css"' \
      | grep -o '/assets/[^"]*' || true)
[[ -n "$css" ]] || { echo "demo: no stylesheet link in the Rails page" >&2; exit 1; }
check " (its stylesheet)" "$css" "${https[@]}"

# --- examples/notes: verified with its services before it ships -----------------------------------
NOTES_CONFIG="$ROOT/examples/notes/imgbuild.yaml"
"$IMGBUILD" -c "$NOTES_CONFIG" app --push --verify --json > "$IMGBUILD_DEV_HOME/demo-notes-result.json"
"$VENV/bin/python" - "$IMGBUILD_DEV_HOME/demo-notes-result.json" <<'PY'
import json, sys
verify = json.load(open(sys.argv[1]))["report"]["verify"]
tests, smoke = verify["tests"], verify["smoke"]
print(f"demo: notes: services ready: {', '.join(f'{k} {v}s' for k, v in verify['services'].items())}")
print(f"demo: notes: smoke {smoke['check']} -> {smoke['status']}; tests {tests['tests']} passed "
      f"({tests['command']}, PostgreSQL and Redis); JUnit: {', '.join(verify['junit'])}")
PY
