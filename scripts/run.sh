#!/usr/bin/env bash
# The main job: set up (if needed), then run the whole pipeline offline on the bundled
# dataset: preflight -> preprocess -> split -> RecordIO -> local Linear Learner -> local
# endpoint -> predictions over HTTP -> metrics and report -> CDK synth.
# Extra arguments go to `python -m training run` (e.g. -q, or --data my.csv --label y ...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CDK_DISABLE_CLI_TELEMETRY=1 JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
exec .venv/bin/python -m training run --target local --out "${OUT:-runs/latest}" "$@"
