#!/usr/bin/env bash
# Makes .venv at the repository root with moto server (the AWS emulator the tests run against)
# and boto3. Idempotent: does nothing when .venv already has them.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
if [ -x .venv/bin/moto_server ] && .venv/bin/python -c "import moto, boto3" 2>/dev/null; then
  exit 0
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==${MOTO_VERSION}"
.venv/bin/python -c "import moto, boto3; print('moto', moto.__version__, 'boto3', boto3.__version__)"
