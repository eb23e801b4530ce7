#!/usr/bin/env bash
# SynthME 2.0 evidence (issue 13, docs/design-notes.md): every command, in the order it was run,
# and (step 6) the bundled model built from the same runs.
# Usage: bash benchmarks/synthme2_evidence.sh WORK_DIR [format2|format1]   (1-1.5 h on 2 CPU cores)
# Needs the [synthme] extra and ultralytics' photographs:
#   pip install -e ".[synthme]" -c constraints.txt && pip install --no-deps ultralytics==8.4.190
# Then: python benchmarks/collect_synthme2_evidence.py WORK_DIR   (writes benchmarks/results/)
set -u
export OMP_NUM_THREADS=1
F=${FMANET_HF:-fmanet-hf}
D=${1:?give a work folder}
# The inputs of every run come from a saved processor folder, so the runs stay reproducible when
# the defaults change. format2 (the default, and the committed evidence since 2026-12-07): DIS
# flow, detection at 320 px, 5 ECC iterations. format1: TV-L1 flow, the evidence and bundled
# model before 2026-12-07 (docs/design-notes.md, "Preprocessing speed, format 2").
FORMAT=${2:-format2}
P="$(cd "$(dirname "$0")" && pwd)/processors/$FORMAT"
[ -f "$P/preprocessor_config.json" ] || { echo "no processor folder $P (give format2 or format1)" >&2; exit 2; }
RECIPE="--epochs 20 --batch-size 16 --lr 2e-3 --weight-decay 1e-4 --augment flow --ema-decay 0.99"
stamp() { date -u +%H:%M:%S; }
mkdir -p "$D"
# 1. Data (fixed before any model was scored) and the logistic-regression baseline.
$F synth --generator 2.0 --people loso --samples-per-class 8 --seed 0 --out "$D/s2-loso" --quiet
$F prepare --dataset synthme --root "$D/s2-loso" --cache-dir "$D/cache" --processor "$P" --num-proc 2 > "$D/prep-loso.log" 2>&1
$F baseline --dataset synthme --root "$D/s2-loso" --cache-dir "$D/cache" --processor "$P" --pool inner --l2 inner --out "$D/baseline-logreg-inner.json"
# 2. FMANet against both baselines, and the single-phase ablation, 3 seeds each.
echo "$(stamp) ablate (core) start"
$F ablate --dataset synthme --root "$D/s2-loso" --cache-dir "$D/cache" --processor "$P" --out "$D/runs/ablation" --seeds 0,1,2 \
  --ablations full,mmcof_cnn,mmcof_logreg,single_phase \
  $RECIPE --fold-workers 2 --quiet > "$D/ablation-core.log" 2>&1 && echo "$(stamp) ablate (core) OK" || echo "$(stamp) ablate (core) FAIL"
# 3. Pretraining on the pretrain group (another person, 2100 clips), then the same LOSO started from it.
#    The pretrain person's small face is sometimes missed by the detector: those clips are skipped and listed.
$F synth --generator 2.0 --people pretrain --samples-per-class 700 --seed 4 --out "$D/s2-pretrain-2100" --quiet
$F prepare --dataset synthme --root "$D/s2-pretrain-2100" --cache-dir "$D/cache" --processor "$P" --num-proc 2 --on-face-missing skip \
  > "$D/prep-pretrain-2100.log" 2>&1
$F pretrain --dataset synthme --root "$D/s2-pretrain-2100" --cache-dir "$D/cache" --processor "$P" --on-face-missing skip \
  --out "$D/runs/pretrained-2100" --seed 0 $RECIPE --quiet > "$D/pretrain-2100.log" 2>&1 \
  && echo "$(stamp) pretrain OK" || echo "$(stamp) pretrain FAIL"
$F ablate --dataset synthme --root "$D/s2-loso" --cache-dir "$D/cache" --processor "$P" --out "$D/runs/init-from" --seeds 0,1,2 --ablations full \
  --init-from "$D/runs/pretrained-2100" $RECIPE --fold-workers 2 --quiet > "$D/init-from.log" 2>&1 && echo "$(stamp) init-from OK" || echo "$(stamp) init-from FAIL"
# 4. The other ablations (the runs of step 2 are reused: resumed, not retrained), one table.
$F ablate --dataset synthme --root "$D/s2-loso" --cache-dir "$D/cache" --processor "$P" --out "$D/runs/ablation" --seeds 0,1,2 \
  --ablations full,mmcof_cnn,mmcof_logreg,single_phase,no_attention,no_modulation,fixed_fusion \
  $RECIPE --fold-workers 2 --quiet > "$D/ablation.log" 2>&1 && echo "$(stamp) ablate OK" || echo "$(stamp) ablate FAIL"
# 5. The recipe's own effect: the same schedule without augmentation and weight averaging.
$F ablate --dataset synthme --root "$D/s2-loso" --cache-dir "$D/cache" --processor "$P" --out "$D/runs/plain" --seeds 0,1,2 --ablations full \
  --epochs 20 --batch-size 16 --lr 2e-3 --weight-decay 1e-4 --fold-workers 2 --quiet > "$D/plain.log" 2>&1 \
  && echo "$(stamp) plain OK" || echo "$(stamp) plain FAIL"
# 6. The bundled model: the seed-0 pretrained run again as `loso` (the same folds, seed and fold workers
#    as ablate's, so the same LOSO predictions) plus the final model on all 10 subjects; exported after
#    the collect script (docs/inference.md, "The bundled default model").
$F loso --dataset synthme --root "$D/s2-loso" --cache-dir "$D/cache" --processor "$P" --out "$D/runs/pretrained-seed0" \
  --init-from "$D/runs/pretrained-2100" $RECIPE --seed 0 --fold-workers 2 --train-final-model --quiet > "$D/bundled-loso.log" 2>&1 \
  && echo "$(stamp) bundled loso OK" || echo "$(stamp) bundled loso FAIL"
echo "$(stamp) all done"
