#!/usr/bin/env bash
# Create/refresh the dev virtualenv; fast when nothing changed. The stamp records which checkout
# was installed (editable) and the pyproject it was installed from, so a clone elsewhere (CI)
# reinstalls instead of importing another checkout's code.
set -euo pipefail
VENV=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STAMP="$VENV/.imgbuild-installed"
want="$ROOT $(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  exit 0
fi
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[dev]"
echo "$want" > "$STAMP"
echo "install: imgbuild installed in $VENV" >&2
