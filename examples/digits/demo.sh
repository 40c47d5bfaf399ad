#!/usr/bin/env bash
# The demo, end to end: build the digits CNN, quantize it to full int8, evaluate it against the
# float model with a 1-point accuracy gate, and inspect the result.
set -euo pipefail
cd "$(dirname "$0")"
EDGEPACK=../../.venv/bin/edgepack
PY=../../.venv/bin/python
mkdir -p out
echo "== 1/4 build the digits model and data (sklearn load_digits, offline)"
$PY build.py out
echo "== 2/4 quantize to full int8 with int8 input and output"
$EDGEPACK quantize out/model.keras -o out/model_int8.tflite --mode int8 --io int8 --calibration out/train.npz
echo "== 3/4 evaluate against the float Keras model (fails if accuracy drops more than 1 point)"
$EDGEPACK evaluate out/model_int8.tflite --data out/val.npz --reference out/model.keras --max-drop 1.0
echo "== 4/4 inspect the .tflite"
$EDGEPACK inspect out/model_int8.tflite
echo "demo done: examples/digits/out/model_int8.tflite"
