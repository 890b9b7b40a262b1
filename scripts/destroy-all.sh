#!/usr/bin/env bash
# Destroy everything and prove it: stop the project's tuning, training and transform jobs and
# wait until they have stopped (a stopping job still uploads to the bucket), empty the versioned
# bucket, `cdk destroy --all --force`, delete what CloudFormation does not own (SageMaker log
# groups, the auto-delete handler's log group), then the audit; exits non-zero if anything is left.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CDK_DISABLE_CLI_TELEMETRY=1
exec .venv/bin/python -m training destroy-all ${PROJECT:+--project "$PROJECT"}
