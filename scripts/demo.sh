#!/usr/bin/env bash
# Set up (if needed), then run what the project can do offline today on the bundled dataset:
# prepare the Palmer penguins CSV into RecordIO channels, preflight them, and synthesize the
# CDK app. (The full local train -> serve -> report pipeline is the main-job issue.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CDK_DISABLE_CLI_TELEMETRY=1
out=${1:-runs/demo}
py=.venv/bin/python
$py -m training prepare --data data/penguins.csv --label species \
    --predictor-type multiclass_classifier --out "$out"
dim=$($py -c "import json,sys; print(json.load(open(sys.argv[1]))['feature_dim'])" "$out/manifest.json")
$py -m training validate "$out/train" "$out/validation" "$out/test" \
    --predictor-type multiclass_classifier --num-classes 3 --feature-dim "$dim"
npx --no-install cdk synth --no-notices -q -o "$out/cdk.out"
echo "CloudFormation templates: $(ls "$out"/cdk.out/*.template.json | tr '\n' ' ')"
