#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: lint, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Tests never reach AWS: fake credentials (tests/conftest.py also routes any stray request
# to a dead proxy, so a real call fails instead of reaching the network).
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
unset AWS_PROFILE AWS_DEFAULT_PROFILE
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null CDK_DISABLE_CLI_TELEMETRY=1 MPLBACKEND=Agg
# jsii warns on every import that Node 20 is end-of-life; the tests pass on it, so keep the log readable
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
.venv/bin/ruff check .
.venv/bin/python -m pytest -n 2 "$@"
