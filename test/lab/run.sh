#!/usr/bin/env bash
# By hand: one drive.mjs scenario in a real JupyterLab with this checkout's kernel (npm run build first).
#   bash test/lab/run.sh [tour|ablation]           JupyterLab 4.6 (what test/lab.test.ts runs)
#   LAB=3 bash test/lab/run.sh [tour|ablation]     JupyterLab 3.6.8 (test/lab/app36)
# Screenshots and report.json go to artifacts/lab<3|4>-by-hand/<scenario>/; the server and its kernels stop at the end.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SCENARIO=${1:-tour}
case $SCENARIO in tour) NB=attention-tour.ipynb ;; ablation) NB=ablation.ipynb ;; *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;; esac
APP=$(bash "$HERE/build.sh" | tail -1) || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/arrakis-lab-XXXXXX")
SHOTS=$ROOT/artifacts/lab${LAB:-4}-by-hand/$SCENARIO
PORT=${PORT:-8898}
export JUPYTER_PATH=$TMP/prefix/share/jupyter JUPYTER_CONFIG_DIR=$TMP/config JUPYTER_DATA_DIR=$TMP/data JUPYTER_RUNTIME_DIR=$TMP/runtime
node "$ROOT/dist/kernel/cli.js" install --prefix "$TMP/prefix" >/dev/null || exit 1
mkdir -p "$TMP/root" && cp "$ROOT/notebooks/$NB" "$TMP/root/"
/usr/bin/python3 "$HERE/lab_server.py" --port "$PORT" --root "$TMP/root" --state "$TMP/state" --app "$APP" > "$TMP/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 120); do curl -sf "http://127.0.0.1:$PORT/api/status" >/dev/null && break; sleep 0.5; done
node "$HERE/drive.mjs" --url "http://127.0.0.1:$PORT" --nb "$NB" --shots "$SHOTS" --scenario "$SCENARIO" \
  --pw "$ROOT/node_modules/playwright-core" --full-shots
