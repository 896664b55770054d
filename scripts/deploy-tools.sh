#!/usr/bin/env bash
# Installs the tools that check orgop's deployment templates, for the tests in
# tests/deploy_tools.rs and the template tests (orgop_testkit::deploy_tools):
#   .venv-cfn          cfn-lint and checkov (PyPI). A venv of its own: checkov pins many
#                      packages (boto3 among them) that must not move moto's .venv.
#   tests/iam          @cloud-copilot/iam-simulate and iam-data (npm), driven by simulate.mjs.
# Idempotent: does nothing when the pinned versions are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
CFN_LINT_VERSION="${CFN_LINT_VERSION:-1.58.0}"
CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"

have_pinned() {
  [ -x .venv-cfn/bin/cfn-lint ] && [ -x .venv-cfn/bin/checkov ] \
    && .venv-cfn/bin/python - "$CFN_LINT_VERSION" "$CHECKOV_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if (version("cfn-lint"), version("checkov")) == (sys.argv[1], sys.argv[2]) else 1)
PY
}

if ! have_pinned; then
  python3 -m venv .venv-cfn
  .venv-cfn/bin/pip install --quiet --disable-pip-version-check \
    "cfn-lint==${CFN_LINT_VERSION}" "checkov==${CHECKOV_VERSION}"
  have_pinned || { echo "deploy-tools.sh: cfn-lint/checkov did not install" >&2; exit 1; }
fi
echo "cfn-lint ${CFN_LINT_VERSION}, checkov ${CHECKOV_VERSION} in .venv-cfn"

npm ci --prefix tests/iam --no-audit --no-fund --loglevel=error
