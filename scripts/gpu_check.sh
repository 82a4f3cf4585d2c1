#!/usr/bin/env bash
# Every GPU check and benchmark in one call of at most 540 s, on a machine with an NVIDIA GPU:
#
#   OUT=/some/dir bash scripts/gpu_check.sh              # the main steps (one call)
#   OUT=/some/dir bash scripts/gpu_check.sh --extended   # the longer ones (a second call)
#   bash scripts/gpu_check.sh --plan                     # the steps, their caps, the total
#
# The steps, their caps and the deadline live in src/gpuscout/validate/gpu_check.py; this
# installs gpuscout (without touching other packages; PYTHONPATH=src where that fails),
# keeps the results store in .gpu_check/home (git-ignored) and runs it. Results:
# $OUT/steps.json, $OUT/summary.md and $OUT/gpu_check.tar.gz (everything), even when cut off.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-out}"
PY="${PYTHON:-python3}"  # on the lent GPU machines python3 is the one that holds torch
case " $* " in
  *" --plan "*) ;;  # prints the plan only: nothing to install
  *) mkdir -p "$OUT"
     "$PY" -m pip install -q --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1 \
       || echo "editable install failed; falling back to PYTHONPATH=src" | tee -a "$OUT/install.log" ;;
esac
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export GPUSCOUT_HOME="${GPUSCOUT_HOME:-$PWD/.gpu_check/home}"
mkdir -p "$GPUSCOUT_HOME"
exec "$PY" -m gpuscout.validate.gpu_check --out "${OUT}" "$@"
