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
# qgis_process's stderr (harmless noise when it works) goes to a log, shown if it fails
log="$out_dir/qgis_process.log"
failed() {
  echo "qgis_process failed; the end of its log ($log):" >&2
  tail -n 20 "$log" >&2
  exit 1
}

# linked again each time: a checkout updated since may have new plugin modules to link
bash scripts/link_plugin_dev.sh "$profile" >/dev/null
qgis_process.bin plugins enable uniadrs >/dev/null 2>&1 || true

if .venv/bin/python -c "from uniadrs_engine.model.default import has_default_model as h; raise SystemExit(not h())"; then
  preset=$(.venv/bin/python -c "from uniadrs_engine.inference.presets import preset_names; print(preset_names().index('sar'))")
  output="$out_dir/hrsid_P0094_uniadrs_scores.tif"
  echo "Detecting anomalies with the shipped default UniADRS model (qgis_process uniadrs:detectanomalies, SAR preset)..." >&2
  qgis_process.bin run uniadrs:detectanomalies --json -- \
    INPUT="$scene" PRESET="$preset" OUTPUT="$output" 2>"$log" >"$out_dir/detect.json" || failed
  label="UniADRS default model"
else
  output="$out_dir/hrsid_P0094_rx_scores.tif"
  echo "No trained default model is shipped yet: running the global RX detector instead (qgis_process uniadrs:rx)." >&2
  qgis_process.bin run uniadrs:rx --json -- \
    INPUT="$scene" MODE=0 OUTPUT="$output" 2>"$log" >"$out_dir/detect.json" || failed
  label="global RX (no default model shipped yet)"
fi

.venv/bin/python - "$output" "$label" "$repo/resources/sample/hrsid_P0094_ships_mask.tif" \
  "$out_dir/detect.json" <<'PY'
import json
import sys

import numpy as np

from uniadrs_engine.metrics.evaluation import evaluate_rasters
from uniadrs_engine.raster.reader import open_raster

output, label, mask, run_json = sys.argv[1:5]
run = json.load(open(run_json, encoding="utf-8"))["results"]
with open_raster(output) as scores:
    block = scores.read_window((0, 0, scores.width, scores.height))
    values = block.data[0][block.valid]
    size = f"{scores.width}x{scores.height}"
top = float(np.quantile(values, 0.99))
auc = evaluate_rasters(output, mask).auc
seconds = run.get("SECONDS")
timing = f" in {seconds:.1f} s on {run.get('DEVICE_USED', 'cpu')}" if seconds else ""
print(f"Score GeoTIFF: {output}")
print(
    f"{label}: {size} px scored{timing}; scores {values.min():.3f}-{values.max():.3f}, "
    f"top 1 % above {top:.3f}; pixel AUC against the ships mask {auc:.3f}"
)
PY
