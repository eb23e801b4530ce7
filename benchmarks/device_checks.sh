#!/usr/bin/env bash
# Every GPU check of issues 15 and 16 as one command on a lent GPU machine, and the staging
# that must happen here first (the GPU machine has no OpenCV-contrib, dlib or `datasets`, and
# no network). docs/performance.md ("GPU") says what each check measures.
#
#   bash benchmarks/device_checks.sh stage WORK_DIR     # here: inputs -> .gpu/, wheels -> .whl/
#   # then ONE device call (run tool), carrying both folders:
#   #   command: bash benchmarks/device_checks.sh run "$OUT"    carry: [".gpu", ".whl"]   timeout_s: 560
#   bash benchmarks/device_checks.sh run OUT_DIR --device cpu --quick   # the wiring, on any CPU
#
# `run` writes five files into OUT_DIR (what the device tool brings back): gpu_check.json,
# loso-speed-gpu-seeds-0.json, loso-speed-gpu-seeds-1-2.json, environment.txt and log.txt. Each check has its own time limit, so one
# that overruns leaves the others' figures.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# The wheels `run` installs there: what the package imports for training that the machine's
# image lacks (its torch, transformers, accelerate, safetensors, numpy, pandas, pyarrow are used).
# datasets 5.2 needs pyarrow >= 24; if environment.txt shows the image's is older, add a cp312
# pyarrow wheel here (about 40 MB: .gpu/ is 25 MB, and a device call carries 64 MiB at most).
# Staged on 2026-12-07: .gpu/ 25 MB, .whl/ 1 MB, in 1 min 41 s on 2 cores.
WHEELS="datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 evaluate==0.4.6"

stage() {
  local work=${1:?stage needs a work folder}
  mkdir -p "$work" .gpu .whl
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  local f=${FMANET_HF:-fmanet-hf}
  # gpu_check's set (SynthME 2.0, the LOSO people, 4 clips per class) and the MEGC-size set of issue 16.
  [ -d "$work/synthme2-small" ] || $f synth --generator 2.0 --people loso --samples-per-class 4 --seed 0 --out "$work/synthme2-small" --quiet || return 1
  [ -d "$work/synth68" ] || $f synth --subjects 68 --samples-per-class 2 --seed 0 --out "$work/synth68" --quiet || return 1
  local name entry
  for name in synthme2-small synth68; do
    $f prepare --dataset synthme --root "$work/$name" --cache-dir "$work/cache-$name" --quiet || return 1
    entry=$(ls -d "$work/cache-$name"/prepared/*/ | head -1)
    python benchmarks/gpu_check.py --export-from "$entry" --data ".gpu/$name.npz" || return 1
  done
  # Python 3.12 is the GPU machine's (docs of the device tool); these wheels are pure Python.
  python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl $WHEELS || return 1
  du -sh .gpu .whl
  echo "staged: now one device call: bash benchmarks/device_checks.sh run \"\$OUT\"  (carry .gpu and .whl)"
}

run() {
  local out=${1:?run needs an output folder}; shift
  local device=cuda quick=0
  while [ $# -gt 0 ]; do
    case $1 in
      --device) device=$2; shift 2 ;;
      --quick) quick=1; shift ;;
      *) echo "unknown option $1" >&2; return 2 ;;
    esac
  done
  mkdir -p "$out"
  local log="$out/log.txt"
  if ls .whl/*.whl >/dev/null 2>&1 && ! python3 -c "import datasets" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/fmanet-site .whl/*.whl >>"$log" 2>&1 || { echo "wheel install failed" >>"$log"; return 1; }
    export PYTHONPATH=/tmp/fmanet-site
  fi
  export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_EVALUATE_OFFLINE=1
  {
    date -u; nvidia-smi 2>&1 | head -15
    python3 -c "import torch, transformers, datasets, fmanet_hf; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__, 'datasets', datasets.__version__, 'fmanet_hf', fmanet_hf.__version__)"
  } >"$out/environment.txt" 2>&1
  local small=() megc=(--npz .gpu/synth68.npz --modes per_fold,batched_auto,batched_auto_bf16) extra=(--compile --fold-workers 4)
  [ -f .gpu/synthme2-small.npz ] && small=(--data .gpu/synthme2-small.npz)
  if [ "$quick" = 1 ]; then
    small=(--tiny); megc=(--quick --modes per_fold,batched_all); extra=()
  fi
  # 1. issue 15: CUDA LOSO beside the CPU, inference timing, a resumed run's determinism.
  timeout 240 python3 benchmarks/gpu_check.py /tmp/fmanet-gpu-check --device "$device" "${small[@]}" "${extra[@]}" >>"$log" 2>&1
  echo "gpu_check exit $?" >>"$log"
  cp /tmp/fmanet-gpu-check/gpu_check.json "$out/" 2>>"$log"
  # 2. issue 16: the MEGC-size LOSO fold by fold and fold-batched (auto: as many folds as fit),
  #    seed 0 first so that its figures exist even if the other seeds run out of time.
  local seeds
  for seeds in 0 1,2; do
    timeout 150 python3 benchmarks/loso_speed.py "${megc[@]}" --seeds "$seeds" --device "$device" \
      --json "$out/loso-speed-gpu-seeds-${seeds/,/-}.json" >>"$log" 2>&1
    echo "loso_speed seeds $seeds exit $?" >>"$log"
  done
  tail -5 "$log"
}

case ${1:-} in
  stage) shift; stage "$@" ;;
  run) shift; run "$@" ;;
  *) echo "usage: bash benchmarks/device_checks.sh stage WORK_DIR | run OUT_DIR [--device D] [--quick]" >&2; exit 2 ;;
esac
