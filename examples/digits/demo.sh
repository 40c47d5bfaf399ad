#!/usr/bin/env bash
# The demo, end to end: build the digits CNN and its data, then run recipes/demo.yaml (prune,
# cluster, full int8, evaluated against the float model, latency measured here, gated), and check
# the bundle it writes.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
EDGEPACK="$ROOT/.venv/bin/edgepack"
echo "== 1/3 build the digits model and data (sklearn load_digits, offline)"
"$ROOT/.venv/bin/python" examples/digits/build.py examples/digits/out
echo "== 2/3 edgepack run recipes/demo.yaml"
"$EDGEPACK" run recipes/demo.yaml
echo "== 3/3 check the bundle"
"$EDGEPACK" verify dist/demo
(cd dist/demo && sha256sum -c --quiet SHA256SUMS && echo "sha256sum -c: OK")
echo "demo done: dist/demo (open dist/demo/report.html in a browser)"
