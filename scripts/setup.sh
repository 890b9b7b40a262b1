#!/usr/bin/env bash
# Set up everything the project needs on a fresh machine: .venv/ with the Python packages,
# .venv-checkov/ with checkov, node_modules/ with the pinned CDK CLI, and
# .venv-sklearn-container/ with SageMaker's scikit-learn container's serving stack on Python 3.9
# (tests/test_featurizer_container.py). A second run reuses what is installed (stamps of the
# requirement files' checksums decide).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
stamp=.venv/.setup-stamp
want=$(cat pyproject.toml requirements.txt requirements-dev.txt requirements-checkov.txt package.json \
  package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)

# The scikit-learn container's Python (framework 1.2-1: Python 3.9 and the image's pins, see
# requirements-sklearn-container.txt), in a venv of its own. Without a Python 3.9 it is skipped
# with a warning, and so is the test that needs it.
sklearn_container_venv() {
  local venv=.venv-sklearn-container want39 py39="" candidate
  want39=$(sha256sum requirements-sklearn-container.txt | cut -d' ' -f1)
  if [ -f "$venv/.setup-stamp" ] && [ "$(cat "$venv/.setup-stamp")" = "$want39" ]; then
    return 0
  fi
  for candidate in ${PYTHON39:-} "$venv/bin/python" \
    $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9.*/bin/python 2>/dev/null | sort -V -r) \
    "$(command -v python3.9 || true)"; do
    if [ -x "$candidate" ] && "$candidate" -c \
      'import sys; sys.exit(sys.version_info[:2] != (3, 9))' 2>/dev/null; then
      py39=$candidate
      break
    fi
  done
  if [ -z "$py39" ]; then
    echo "warning: no Python 3.9 found (PYTHON39, pyenv's versions/3.9.*, python3.9 on PATH):" \
      "$venv/ not created; tests/test_featurizer_container.py will skip" >&2
    return 0
  fi
  echo "==> setting up $venv/ (SageMaker scikit-learn 1.2-1 serving stack, Python 3.9)"
  [ -x "$venv/bin/python" ] || "$py39" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r requirements-sklearn-container.txt
  echo "$want39" > "$venv/.setup-stamp"
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x node_modules/.bin/cdk ]; then
  sklearn_container_venv
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
sklearn_container_venv
