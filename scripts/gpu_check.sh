#!/usr/bin/env bash
# Every GPU check and benchmark, end to end, on a machine with an NVIDIA GPU.
# Usage: OUT=/some/dir bash scripts/gpu_check.sh [--quick]
# Writes doctor output, GPU test results and benchmark JSON under $OUT. Needs torch with
# CUDA already installed; installs gpuscout itself without touching other packages.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out}"
mkdir -p "$OUT"
QUICK="${1:-}"
export GPUSCOUT_HOME="$OUT/home"

pip install -q --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1 \
  || echo "editable install failed; falling back to PYTHONPATH=src" | tee -a "$OUT/install.log"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
GS="python -m gpuscout"

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  python -c "import torch, sys; print('python', sys.version.split()[0]); print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true
} >"$OUT/versions.txt" 2>&1

{ echo "\$ gpuscout doctor"; COLUMNS=110 $GS doctor; echo "exit code: $?"; } >"$OUT/doctor.txt" 2>&1
$GS doctor --json >"$OUT/doctor.json" 2>"$OUT/doctor.stderr"

python scripts/plain_torch_reference.py >"$OUT/plain_reference.json" 2>"$OUT/plain_reference.stderr"

python -m pytest -q -p no:cacheprovider tests/gpu >"$OUT/pytest_gpu.txt" 2>&1

start=$(date +%s.%N)
$GS bench micro --quick --json >"$OUT/bench_quick.json" 2>"$OUT/bench_quick.stderr"
echo "bench micro --quick wall: $(echo "$(date +%s.%N) - $start" | bc) s" >>"$OUT/versions.txt"
if [ "$QUICK" != "--quick" ]; then
  start=$(date +%s.%N)
  $GS bench micro --device cuda:0 --json >"$OUT/bench_full.json" 2>"$OUT/bench_full.stderr"
  echo "bench micro (full, cuda:0) wall: $(echo "$(date +%s.%N) - $start" | bc) s" >>"$OUT/versions.txt"
fi
python scripts/workload_goals.py >"$OUT/workload_goals.json" 2>"$OUT/workload_goals.stderr"
# --- bench dist (issue 7): the single-GPU NCCL path, and two ranks sharing one GPU ------
# NCCL will not put two ranks on one GPU, so the shared run uses gloo with CUDA tensors.
# (tests/gpu/test_dist_gpu.py, run above, records what NCCL itself says about sharing.)
start=$(date +%s.%N)
$GS bench dist --nproc-per-node 1 --backend nccl --quick --workload cnn,encoder,llm --json \
  >"$OUT/dist_nccl_1rank_quick.json" 2>"$OUT/dist_nccl_1rank_quick.stderr"
echo "bench dist nccl 1 rank --quick: exit $?, wall $(echo "$(date +%s.%N) - $start" | bc) s" >>"$OUT/versions.txt"
start=$(date +%s.%N)
$GS bench dist --nproc-per-node 2 --backend gloo --device cuda --quick --workload cnn --json \
  >"$OUT/dist_gloo_cuda_2ranks_quick.json" 2>"$OUT/dist_gloo_cuda_2ranks_quick.stderr"
echo "bench dist gloo+cuda 2 ranks --quick: exit $?, wall $(echo "$(date +%s.%N) - $start" | bc) s" >>"$OUT/versions.txt"
if [ "$QUICK" != "--quick" ]; then
  start=$(date +%s.%N)
  COLUMNS=120 $GS bench dist --nproc-per-node 1 --backend nccl --workload cnn,encoder,llm \
    >"$OUT/dist_nccl_1rank_full.txt" 2>"$OUT/dist_nccl_1rank_full.stderr"
  echo "bench dist nccl 1 rank (full, 1 KiB-1 GiB): exit $?, wall $(echo "$(date +%s.%N) - $start" | bc) s" >>"$OUT/versions.txt"
fi
# --- end bench dist -------------------------------------------------------------------
echo "done; results in $OUT"
