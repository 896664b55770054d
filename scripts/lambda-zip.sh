#!/usr/bin/env bash
# Builds the orgop Lambda for arm64 (Graviton, provided.al2023) as the zip CloudFormation
# deploys: target/lambda-zip/orgop-lambda/bootstrap.zip, with the workspace's `lambda` profile
# (opt-level z, fat LTO, one codegen unit, abort on panic, stripped).
# cargo-lambda (PyPI, bringing zig as the cross linker) goes into .venv-lambda; the Rust
# standard library for aarch64-unknown-linux-gnu comes from rustup. Where either cannot be
# installed, prints "skipped: <why>" and exits 0: the zip is built where cargo-lambda installs.
# ORGOP_SKIP_LAMBDA_ZIP=1 skips it on purpose. (Not cargo-lambda's default target/lambda/:
# `cargo build --profile lambda` writes the file target/lambda/orgop-lambda there.) Idempotent; cargo rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_LAMBDA_VERSION="${CARGO_LAMBDA_VERSION:-1.9.2}"
TARGET=aarch64-unknown-linux-gnu
ZIP=target/lambda-zip/orgop-lambda/bootstrap.zip

skip() {
  echo "lambda-zip.sh: skipped: $*"
  exit 0
}

[ "${ORGOP_SKIP_LAMBDA_ZIP:-0}" = 1 ] && skip "ORGOP_SKIP_LAMBDA_ZIP=1"

if ! .venv-lambda/bin/python -c "
import sys
from importlib.metadata import version
sys.exit(version('cargo-lambda') != sys.argv[1])" "$CARGO_LAMBDA_VERSION" 2>/dev/null; then
  python3 -m venv .venv-lambda || skip "python3 -m venv .venv-lambda failed"
  .venv-lambda/bin/pip install --quiet --disable-pip-version-check \
    "cargo-lambda==${CARGO_LAMBDA_VERSION}" || skip "cargo-lambda ${CARGO_LAMBDA_VERSION} does not install from PyPI"
fi
export PATH="$PWD/.venv-lambda/bin:$PATH"
cargo lambda --help >/dev/null 2>&1 || skip "cargo-lambda does not run on this machine"

if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  rustup target add "$TARGET" || skip "rustup cannot install the $TARGET target"
fi

start=$(date +%s)
CARGO_INCREMENTAL=0 cargo lambda build --profile lambda --arm64 --output-format zip \
  --lambda-dir target/lambda-zip -p orgop-lambda
seconds=$(( $(date +%s) - start ))

# The zip holds one file, `bootstrap`, an ELF for aarch64 (e_machine 183).
python3 - "$ZIP" <<'PY'
import struct, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = z.namelist()
    assert names == ["bootstrap"], f"{sys.argv[1]} holds {names}, not just bootstrap"
    head = z.read("bootstrap")[:20]
assert head[:4] == b"\x7fELF", "bootstrap is not an ELF executable"
machine = struct.unpack_from("<H", head, 18)[0]
assert machine == 183, f"bootstrap is for ELF machine {machine}, not aarch64 (183)"
PY
echo "lambda zip: $ZIP $(stat -c %s "$ZIP") bytes (arm64, profile lambda, built in ${seconds} s)"
