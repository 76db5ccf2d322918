#!/bin/bash
# Scores a candidate for the visible preset by the rule of docs/DEFAULT_MODEL.md (experiment
# 44): D = the shipped default model, V = the model that RECIPE packages from the shipped
# networks and the new network files (scripts/package_default_model.py --recipe), both scored
# through inference as the visible preset scores a raster (scripts/compare_scales.py --preset
# visible, at the preset's scales as D's card names them, with the networks each card gives
# the preset); every set is drawn at one validation seed, 96 samples each.
#
# Usage: bash scripts/score_visible_candidate.sh OUT_DIR SEED RECIPE NEW_MODEL.safetensors [...]
#
# Writes OUT_DIR/V.safetensors and, for D and V, OUT_DIR/D_judged.txt and OUT_DIR/V_judged.txt
# (the two judged sets: experiment 43's pasted and own-scene anomalies of 15-80 px in 512 px
# crops) and OUT_DIR/D_guard.txt, OUT_DIR/V_guard.txt (the two guard sets: experiment 23's
# own-scene anomalies and experiment 20's visible scenes), with every sample's AUC in the
# matching .json files, and OUT_DIR/bootstrap.txt (V minus D on every set and on the mean of
# each part, with paired bootstrap intervals, scripts/paired_bootstrap.py). D and V run side
# by side, one thread each. The shipped networks are written out by `uniadrs split default
# runs/shipped_<version>` when that folder is missing.
set -euo pipefail
if [ $# -lt 4 ]; then
  grep -m1 "^# Usage:" "$0" >&2
  exit 2
fi
OUT=$1
SEED=$2
RECIPE=$3
shift 3
cd "$(dirname "$0")/.."
UNIADRS=.venv/bin/uniadrs
PYTHON=.venv/bin/python
# The shipped model's version, its visible preset's scales and the names `uniadrs split`
# gives its networks' files, in network order.
{ read -r VERSION SCALES; read -r -a NAMES; } < <("$PYTHON" -c '
from uniadrs_engine.model.model_file import load_model, member_file_names
card = load_model("default").card
print(card.model_version, ",".join(f"{s:g}" for s in card.presets["visible"]["scales"]))
print(*member_file_names(card.member_count))')
COUNT=${#NAMES[@]}
SHIPPED=runs/shipped_$VERSION
[ -f "$SHIPPED/${NAMES[0]}" ] || "$UNIADRS" split default "$SHIPPED"
mkdir -p "$OUT"
MEMBERS=()
for name in "${NAMES[@]}"; do
  MEMBERS+=("$SHIPPED/$name")
done
echo "D: model $VERSION ($COUNT networks), visible preset scales $SCALES"
"$PYTHON" scripts/package_default_model.py --recipe "$RECIPE" --output "$OUT/V.safetensors" \
  "${MEMBERS[@]}" "$@"

S=$SEED
JUDGED=(
  "configs/experiments/validation_visible_preset_sizes.yaml@seed=$S"
  "configs/experiments/validation_visible_preset_sizes_own_scene.yaml@seed=$S"
)
GUARD=(
  "configs/experiments/validation_visible_own_scene.yaml@seed=$S"
  "configs/experiments/validation_visible_scenes.yaml@seed=$S"
)
PIDS=()
for MODEL in D V; do
  if [ "$MODEL" = D ]; then FILE=resources/models/uniadrs_default.safetensors; else FILE=$OUT/V.safetensors; fi
  (
    for PART in judged guard; do
      if [ "$PART" = judged ]; then SETS=("${JUDGED[@]}"); else SETS=("${GUARD[@]}"); fi
      OMP_NUM_THREADS=1 "$PYTHON" scripts/compare_scales.py --model "$FILE" --preset visible \
        --min-bands 1 --samples 96 --scale-sets "$SCALES" --configs "${SETS[@]}" \
        --per-sample "$OUT/${MODEL}_$PART.json" > "$OUT/${MODEL}_$PART.txt" 2>&1
    done
  ) &
  PIDS+=($!)
done
for PID in "${PIDS[@]}"; do
  wait "$PID"
done
for PART in judged guard; do
  "$PYTHON" scripts/paired_bootstrap.py "$OUT/D_$PART.json" "$OUT/V_$PART.json"
done > "$OUT/bootstrap.txt"
for MODEL in D V; do
  for PART in judged guard; do
    echo "== $MODEL $PART"
    cat "$OUT/${MODEL}_$PART.txt"
  done
done
echo "== V minus D"
cat "$OUT/bootstrap.txt"
