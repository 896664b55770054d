#!/usr/bin/env bash
# The test command: installs what the tests need (npm tools for ASL, moto server in .venv,
# cfn-lint and checkov in .venv-cfn and the npm IAM simulator for the deployment templates,
# AWS's protocol compliance cases in .cache/aws-protocol-tests),
# then checks formatting and lints, builds the arm64 Lambda zip (scripts/lambda-zip.sh: about
# 8 minutes from a cold target/ on 2 busy cores; ORGOP_SKIP_LAMBDA_ZIP=1 skips it), then runs
# every test. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== npm: asl-validator and aws-local-stepfunctions (tests/asl)"
npm ci --prefix tests/asl --no-audit --no-fund --loglevel=error

if [ -f scripts/moto-venv.sh ]; then
  echo "== python: moto server in .venv"
  bash scripts/moto-venv.sh
fi

echo "== deployment checkers: cfn-lint and checkov in .venv-cfn, iam-simulate (tests/iam)"
bash scripts/deploy-tools.sh

echo "== protocol compliance cases (botocore sdist) in .cache/aws-protocol-tests"
bash scripts/protocol-tests.sh

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "== cargo-nextest"
  cargo install cargo-nextest --locked
fi

CARGO_DENY_VERSION=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
  echo "== cargo-deny $CARGO_DENY_VERSION (crates.io)"
  cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION"
fi

echo "== cargo deny: licenses, bans, sources (deny.toml; advisories need GitHub, see there)"
cargo deny --log-level error check licenses bans sources

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== the arm64 Lambda zip (cargo-lambda in .venv-lambda) for the deployment tests"
bash scripts/lambda-zip.sh

echo "== tests"
cargo nextest run --workspace --no-fail-fast --status-level fail --final-status-level slow
