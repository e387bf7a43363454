#!/usr/bin/env bash
# make demo: build and push the example app's chain to the local registry, run the app image
# and show it answering, then print the summary.
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
trap 'docker stop -t 2 "$cid" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 50); do
  if body=$(curl -fsS "http://127.0.0.1:$port/" 2>/dev/null); then break; fi
  sleep 0.2
done
[[ -n "${body:-}" ]] || { docker logs "$cid" >&2; echo "demo: the app did not answer" >&2; exit 1; }
echo "demo: GET / -> $body"
echo "demo: user in the container: $(docker exec "$cid" id -un)"
