#!/usr/bin/env bash
# Deploy everything on a real account: base stack -> training on SageMaker -> endpoint stack ->
# check the endpoint runs the new config -> a smoke prediction. Stops at the first failure.
# Needs AWS credentials (standard chain; AWS_PROFILE / AWS_REGION honoured) and a
# bootstrapped account/region (npx cdk bootstrap). Extra CDK flags: CDK_ARGS="-c region=…".
# Usage: scripts/deploy-all.sh [DATA_DIR [-c key=value ...] [--replace-endpoint]]
#   DATA_DIR default: prepares the bundled dataset. Stack options given with -c are kept for
#   later deploys (docs/aws.md, "Stack options stay as deployed").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CDK_DISABLE_CLI_TELEMETRY=1
data=${1:-runs/aws/data}
shift $(( $# > 0 ? 1 : 0 ))
if [ ! -f "$data/manifest.json" ]; then
  .venv/bin/python -m training prepare --data training/datasets/penguins.csv --label sex \
      --predictor-type binary_classifier --drop-unlabeled --out "$data"
fi
exec .venv/bin/python -m training deploy-all --data-dir "$data" ${PROJECT:+--project "$PROJECT"} \
    ${MODEL_RECORD:+--record "$MODEL_RECORD"} "$@"
