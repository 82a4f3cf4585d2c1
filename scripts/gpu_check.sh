#!/usr/bin/env bash
# Every GPU check and benchmark, end to end, on a machine with an NVIDIA GPU.
#
#   OUT=/some/dir bash scripts/gpu_check.sh [--quick]
#   OUT=/some/dir PHASES="check bench" bash scripts/gpu_check.sh   # only some phases
#
# Phases (each meant to fit one 10-minute call of a time-limited machine; the results
# store lives in .gpu_check/home in the checkout, git-ignored, so it carries over between
# calls on the same machine even when $OUT is a fresh folder each time):
#   check  versions, doctor, the GPU tests, the plain-PyTorch reference
#   bench  bench micro (quick and full), bench dist (issue 7)
#   goals  the workload goals of issue 4 (scripts/workload_goals.py: compiles, graphs and
#          the fp32 reference runs; about 5 minutes on an H100 by estimate)
#   work   every workload tuned on cuda:0 (predict's input), gpuscout run with its report
#   fit    predicted vs measured memory (issue 5), accelerate beside it when installed
#   pack   everything under $OUT in one archive, $OUT/gpu_check.tar.gz (always last)
# DEADLINE_S (default 540) bounds the whole call: steps are cut off so that packing
# still happens inside a 10-minute device limit.
# Needs torch with CUDA already installed; installs gpuscout without touching other packages.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
QUICK="${1:-}"
PHASES="${PHASES:-check bench goals work fit pack}"
for phase in $PHASES; do
  case "$phase" in
    check|bench|goals|work|fit|pack) ;;
    *) echo "unknown phase: $phase (check, bench, goals, work, fit, pack)" >&2; exit 2 ;;
  esac
done
export GPUSCOUT_HOME="${GPUSCOUT_HOME:-$PWD/.gpu_check/home}"
mkdir -p "$GPUSCOUT_HOME"

pip install -q --no-deps --no-build-isolation -e . >>"$OUT/install.log" 2>&1 \
  || echo "editable install failed; falling back to PYTHONPATH=src" | tee -a "$OUT/install.log"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
GS="python -m gpuscout"

# A device call is cut off after 10 minutes; everything must be packed before that. Each
# step gets what is left of DEADLINE_S (default 540 s from the start) less a reserve for
# packing, and a step that has no time left is skipped and says so.
START_S=$(date +%s)
DEADLINE_S="${DEADLINE_S:-540}"

# timed NAME CMD...: run CMD under the deadline, append its exit code and wall time to
# $OUT/timings.txt (exit 124: cut off by the deadline)
timed() {
  local name="$1"; shift
  local start end rc left
  left=$(( DEADLINE_S - ($(date +%s) - START_S) - 20 ))
  if [ "$left" -lt 10 ]; then
    echo "$name: skipped, no time left before the ${DEADLINE_S} s deadline" >>"$OUT/timings.txt"
    return 0
  fi
  start=$(date +%s.%N)
  timeout --kill-after=10 "$left" "$@"; rc=$?
  end=$(date +%s.%N)
  echo "$name: exit $rc, wall $(echo "$end - $start" | bc) s" >>"$OUT/timings.txt"
}

phase_check() {
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    python -c "import torch, sys; print('python', sys.version.split()[0]); print('torch', torch.__version__, 'cuda', torch.version.cuda)"
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
  } >"$OUT/versions.txt" 2>&1
  { echo "\$ gpuscout doctor"; COLUMNS=110 $GS doctor; echo "exit code: $?"; } >"$OUT/doctor.txt" 2>&1
  $GS doctor --json >"$OUT/doctor.json" 2>"$OUT/doctor.stderr"
  timed plain_reference sh -c "python scripts/plain_torch_reference.py >'$OUT/plain_reference.json' 2>'$OUT/plain_reference.stderr'"
  timed pytest_gpu sh -c "python -m pytest -q -p no:cacheprovider tests/gpu >'$OUT/pytest_gpu.txt' 2>&1"
}

phase_bench() {
  timed "bench micro --quick" sh -c "$GS bench micro --quick --json >'$OUT/bench_quick.json' 2>'$OUT/bench_quick.stderr'"
  if [ "$QUICK" != "--quick" ]; then
    timed "bench micro (full, cuda:0)" sh -c "$GS bench micro --device cuda:0 --json >'$OUT/bench_full.json' 2>'$OUT/bench_full.stderr'"
  fi
  # bench dist: the single-GPU NCCL path, and two ranks sharing one GPU. NCCL will not
  # put two ranks on one GPU, so the shared run uses gloo with CUDA tensors
  # (tests/gpu/test_dist_gpu.py records what NCCL itself says about sharing).
  timed "bench dist nccl 1 rank --quick" sh -c "$GS bench dist --nproc-per-node 1 --backend nccl --quick --workload cnn,encoder,llm --json >'$OUT/dist_nccl_1rank_quick.json' 2>'$OUT/dist_nccl_1rank_quick.stderr'"
  timed "bench dist gloo+cuda 2 ranks --quick" sh -c "$GS bench dist --nproc-per-node 2 --backend gloo --device cuda --quick --workload cnn --json >'$OUT/dist_gloo_cuda_2ranks_quick.json' 2>'$OUT/dist_gloo_cuda_2ranks_quick.stderr'"
  if [ "$QUICK" != "--quick" ]; then
    timed "bench dist nccl 1 rank (full, 1 KiB-1 GiB)" sh -c "COLUMNS=120 $GS bench dist --nproc-per-node 1 --backend nccl --workload cnn,encoder,llm >'$OUT/dist_nccl_1rank_full.txt' 2>'$OUT/dist_nccl_1rank_full.stderr'"
  fi
}

phase_goals() {
  timed workload_goals sh -c "python scripts/workload_goals.py --out '$OUT/workload_goals.json' >/dev/null 2>'$OUT/workload_goals.stderr'"
}

phase_work() {
  # Every workload, tuned, stored: what predict calibrates on (scripts/predict_validate.py
  # compares such stores from an H100 and an H200).
  timed "bench workload all tuned" sh -c "COLUMNS=120 $GS bench workload all --device cuda:0 --impl tuned >'$OUT/workloads_tuned.txt' 2>&1"
  timed "gpuscout run" sh -c "COLUMNS=120 $GS run --report '$OUT/report.html' >'$OUT/run.txt' 2>&1"
  timed "gpuscout advise" sh -c "COLUMNS=120 $GS advise >'$OUT/advise.txt' 2>&1"
}

phase_fit() {
  timed fit_validate sh -c "python scripts/fit_validate.py --out '$OUT/fit_validate.json' >'$OUT/fit_validate.md' 2>'$OUT/fit_validate.stderr'"
}

phase_pack() {
  # The device tool brings back a few files only: one archive holds them all, with the
  # results store (what predict_validate.py and the report read).
  rm -rf "$OUT/home" && cp -r "$GPUSCOUT_HOME" "$OUT/home"
  python scripts/gpu_summary.py "$OUT" --out "$OUT/summary.md" --phases "$PHASES" $([ "$QUICK" = --quick ] && echo --quick) || true
  tar -czf "$OUT/gpu_check.tar.gz" -C "$OUT" --exclude gpu_check.tar.gz . 2>/dev/null
}

# Pack on the way out whatever happened, so a cut-off run still brings its files back.
case " $PHASES " in *" pack "*) trap phase_pack EXIT ;; esac
for phase in $PHASES; do
  [ "$phase" = pack ] || "phase_$phase"
done
echo "done ($PHASES); results in $OUT"
