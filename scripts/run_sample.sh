#!/usr/bin/env bash
# The main job: set up (idempotent), then detect anomalies in the bundled sample scene with the
# shipped default model through QGIS's headless qgis_process, and print where the score
# GeoTIFF is with a one-line summary. Without a shipped default model it runs the RX detector
# instead and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh

repo="$PWD"
scene="$repo/resources/sample/hrsid_P0094_sar.tif"
out_dir="$repo/output"
mkdir -p "$out_dir"

# Headless QGIS (see docs/QGIS_NOTES in the README): qgis_process.bin, offscreen Qt, the
# venv's python first on PATH, a private profile with the plugin linked into it.
export PATH="$repo/.venv/bin:$PATH"
export QT_QPA_PLATFORM=offscreen
export QGIS_CUSTOM_CONFIG_PATH="$repo/build/qgis-profile"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
profile="$QGIS_CUSTOM_CONFIG_PATH/profiles/default"
if [[ ! -e "$profile/python/plugins/uniadrs/metadata.txt" ]]; then
  bash scripts/link_plugin_dev.sh "$profile" >/dev/null
fi
qgis_process.bin plugins enable uniadrs >/dev/null 2>&1 || true

if .venv/bin/python -c "from uniadrs_engine.model.default import has_default_model as h; raise SystemExit(not h())"; then
  preset=$(.venv/bin/python -c "from uniadrs_engine.inference.presets import preset_names; print(preset_names().index('sar'))")
  output="$out_dir/hrsid_P0094_uniadrs_scores.tif"
  echo "Detecting anomalies with the shipped default UniADRS model (qgis_process uniadrs:detectanomalies, SAR preset)..." >&2
  qgis_process.bin run uniadrs:detectanomalies --json -- \
    INPUT="$scene" PRESET="$preset" OUTPUT="$output" 2>/dev/null >"$out_dir/detect.json"
  label="UniADRS default model"
else
  output="$out_dir/hrsid_P0094_rx_scores.tif"
  echo "No trained default model is shipped yet: running the global RX detector instead (qgis_process uniadrs:rx)." >&2
  qgis_process.bin run uniadrs:rx --json -- \
    INPUT="$scene" MODE=0 OUTPUT="$output" 2>/dev/null >"$out_dir/detect.json"
  label="global RX (no default model shipped yet)"
fi

.venv/bin/python - "$output" "$label" "$repo/resources/sample/hrsid_P0094_ships_mask.tif" <<'PY'
import sys

from uniadrs_engine.metrics.evaluation import evaluate_rasters
from uniadrs_engine.raster.reader import open_raster
from uniadrs_engine.raster.statistics import compute_band_statistics

output, label, mask = sys.argv[1:4]
with open_raster(output) as scores:
    stats = compute_band_statistics(scores)
    size = f"{scores.width}x{scores.height}"
auc = evaluate_rasters(output, mask).auc
print(f"Score GeoTIFF: {output}")
print(
    f"{label}: {size} px scored, score min {stats.minimum[0]:.3f} / mean {stats.mean[0]:.3f} / "
    f"max {stats.maximum[0]:.3f}; pixel AUC against the ships mask {auc:.3f}"
)
PY
