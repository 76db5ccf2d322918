#!/bin/bash
# Scores a candidate addition to the hyperspectral preset by the rule of docs/DEFAULT_MODEL.md
# (experiments 40-42): D = the networks the shipped model's hyperspectral preset scores with (as
# its card names them), C = D plus the new network files, both packed with int4 weights; every
# set is drawn at one validation seed. Experiments 40-42 ran against 10.0's networks 1-8 and
# 11-14 (model 10.0 is in git history before the commit that shipped 11.0).
#
# Usage: bash scripts/score_hsi_candidate.sh OUT_DIR SEED NEW_MODEL.safetensors [...]
#
# Writes OUT_DIR/D.safetensors, OUT_DIR/C.safetensors, OUT_DIR/judged.txt (the four judged
# sets) and OUT_DIR/guard.txt (the three guard sets), each from scripts/compare_models.py with
# global RX and 2000 paired bootstrap resamples. The two comparisons run side by side, one
# thread each (about 14 min on two cores). The shipped networks are written out by
# `uniadrs split default runs/shipped_<version>` when that folder is missing.
set -euo pipefail
if [ $# -lt 3 ]; then
  grep -m1 "^# Usage:" "$0" >&2
  exit 2
fi
OUT=$1
SEED=$2
shift 2
cd "$(dirname "$0")/.."
UNIADRS=.venv/bin/uniadrs
PYTHON=.venv/bin/python
# The shipped model's version, its hyperspectral preset's networks (numbered from 1) and the
# names `uniadrs split` gives its networks' files (network n's is NAMES[n - 1]).
{ read -r VERSION; read -r NETWORKS; read -r -a NAMES; } < <("$PYTHON" -c '
from uniadrs_engine.model.model_file import load_model, member_file_names
card = load_model("default").card
print(card.model_version)
print(*card.presets["hyperspectral"]["networks"])
print(*member_file_names(card.member_count))')
SHIPPED=runs/shipped_$VERSION
[ -f "$SHIPPED/${NAMES[0]}" ] || "$UNIADRS" split default "$SHIPPED"
mkdir -p "$OUT"
D_MEMBERS=()
for n in $NETWORKS; do
  D_MEMBERS+=("$SHIPPED/${NAMES[n - 1]}")
done
echo "D: model $VERSION, hyperspectral networks $NETWORKS"

"$UNIADRS" ensemble "${D_MEMBERS[@]}" --weights int4 -o "$OUT/D.safetensors"
"$UNIADRS" ensemble "${D_MEMBERS[@]}" "$@" --weights int4 -o "$OUT/C.safetensors"

S=$SEED
JUDGED=(
  "configs/experiments/validation_hsi_clutter.yaml@seed=$S"
  "configs/experiments/validation_small_spectra.yaml@seed=$S"
  "configs/experiments/validation_hsi_preset_sizes.yaml@seed=$S"
  "configs/experiments/validation_hsi_preset_sizes_mixed.yaml@seed=$S"
)
GUARD=(
  "configs/default_model.yaml@spectral_share=1.0@seed=$S"
  "configs/experiments/hsi_realistic_spectra.yaml@spectral_share=1.0@seed=$S"
  "configs/experiments/validation_mixed_spectra.yaml@seed=$S"
)
OMP_NUM_THREADS=1 "$PYTHON" scripts/compare_models.py \
  --models "$OUT/D.safetensors" "$OUT/C.safetensors" --rx --bootstrap 2000 \
  --configs "${JUDGED[@]}" > "$OUT/judged.txt" 2>&1 &
JUDGED_PID=$!
OMP_NUM_THREADS=1 "$PYTHON" scripts/compare_models.py \
  --models "$OUT/D.safetensors" "$OUT/C.safetensors" --rx --bootstrap 2000 \
  --configs "${GUARD[@]}" > "$OUT/guard.txt" 2>&1 &
GUARD_PID=$!
wait "$JUDGED_PID"
wait "$GUARD_PID"
echo "judged: $OUT/judged.txt"
echo "guard:  $OUT/guard.txt"
