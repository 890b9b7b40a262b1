#!/usr/bin/env bash
# Set up everything the project needs on a fresh machine: .venv/ with the Python packages,
# .venv-checkov/ with checkov, and node_modules/ with the pinned CDK CLI. A second run reuses
# what is installed (a stamp of the requirement files' checksums decides).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
stamp=.venv/.setup-stamp
want=$(cat requirements.txt requirements-dev.txt requirements-checkov.txt package.json \
  package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x node_modules/.bin/cdk ]; then
  exit 0
fi

echo "==> setting up .venv/ (Python packages) and node_modules/ (CDK CLI)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
# checkov in a venv of its own: its pinned dependencies must not move the project's
[ -x .venv-checkov/bin/python ] || "$PYTHON" -m venv .venv-checkov
.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
if command -v npm >/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
else
  echo "warning: npm not found; 'npx cdk' will not work until Node.js is installed" >&2
fi
echo "$want" > "$stamp"
