#!/usr/bin/env bash
# Regenerates docs/experiments/: every sweep of docs/experiments.md on the embedded default model and on stories260K
# (../shared/models/stories260K-hf, or $LORASHARP_SHARED/models/stories260K-hf), then copies each results.md and the
# plots here. Runs go to sweeps/<model>/<sweep>/ (resumable: run the script again after a stop to continue).
# Usage, from the repository root: docs/experiments/run.sh [sweep names...]   (default: all six)
# LORASHARP_SWEEP_MODELS="default" (or "stories260K") runs one model only; LORASHARP_NO_BUILD=1 skips the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${LORASHARP_SHARED:-../shared}
sweeps=("$@")
[ ${#sweeps[@]} -gt 0 ] || sweeps=(rank-alpha scheduler optimizer epochs target-modules base-dtype)
[ -n "${LORASHARP_NO_BUILD:-}" ] || dotnet build src/LoraSharp.Cli -c Release -v q -nologo >/dev/null
lorasharp() { dotnet src/LoraSharp.Cli/bin/Release/net10.0/lorasharp.dll "$@"; }
for model in ${LORASHARP_SWEEP_MODELS:-default stories260K}; do
  for sweep in "${sweeps[@]}"; do
    out=sweeps/$model/$sweep
    if [ "$model" = default ]; then lorasharp sweep --config docs/experiments/$sweep.yaml --output "$out"
    else lorasharp sweep --config docs/experiments/$sweep.yaml --output "$out" --model "$shared/models/stories260K-hf"; fi
    dest=docs/experiments/$model/$sweep
    rm -rf "$dest" && mkdir -p "$dest"
    cp "$out/results.md" "$out/results.csv" "$dest/"
    cp "$out"/plots/*.png "$out"/plots/*.svg "$dest/"
  done
done
