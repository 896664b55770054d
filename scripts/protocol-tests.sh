#!/usr/bin/env bash
# Fetches AWS's protocol compliance cases (engine/awswire/tests/protocol_tests.rs) into
# .cache/aws-protocol-tests: the folder tests/unit/protocols/ of the botocore source
# distribution on PyPI (input/, output/, protocol-tests-ignore-list.json), with botocore's
# LICENSE.txt and NOTICE (Apache-2.0) beside them. The archive is checked against a pinned
# sha256 before anything is extracted. Idempotent: does nothing when the folder is complete.
#
# Another botocore: BOTOCORE_VERSION=X BOTOCORE_SHA256=<sha256 of botocore-X.tar.gz>.
set -euo pipefail
cd "$(dirname "$0")/.."
BOTOCORE_VERSION="${BOTOCORE_VERSION:-1.44.5}"
BOTOCORE_SHA256="${BOTOCORE_SHA256:-a988f39e3a4484def0b8010f41128f71157da0515a4804fccce4739aa8f216da}"
DEST=.cache/aws-protocol-tests
STAMP="$DEST/VERSION"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$BOTOCORE_VERSION" ] \
  && [ -d "$DEST/input" ] && [ -d "$DEST/output" ] \
  && [ -f "$DEST/protocol-tests-ignore-list.json" ] \
  && [ -f "$DEST/LICENSE.txt" ] && [ -f "$DEST/NOTICE" ]; then
  exit 0
fi

mkdir -p .cache
WORK="$(mktemp -d .cache/protocol-tests.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

echo "protocol-tests: downloading botocore ${BOTOCORE_VERSION} (source distribution) from PyPI"
python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
  "botocore==${BOTOCORE_VERSION}" -d "$WORK"
SDIST="$WORK/botocore-${BOTOCORE_VERSION}.tar.gz"
if [ ! -f "$SDIST" ]; then
  echo "protocol-tests: pip did not produce $SDIST" >&2
  exit 1
fi

# Verify before extracting; python3 so it works the same wherever sha256sum/shasum differ.
ACTUAL="$(python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$SDIST")"
if [ "$ACTUAL" != "$BOTOCORE_SHA256" ]; then
  echo "protocol-tests: sha256 mismatch for $(basename "$SDIST")" >&2
  echo "  expected $BOTOCORE_SHA256" >&2
  echo "  actual   $ACTUAL" >&2
  exit 1
fi

ROOT="botocore-${BOTOCORE_VERSION}"
tar -xzf "$SDIST" -C "$WORK" \
  "$ROOT/LICENSE.txt" "$ROOT/NOTICE" \
  "$ROOT/tests/unit/protocols/input" "$ROOT/tests/unit/protocols/output" \
  "$ROOT/tests/unit/protocols/protocol-tests-ignore-list.json"

# Assemble beside the destination, then swap it in whole: a run cut short leaves no half folder.
NEW="$WORK/aws-protocol-tests"
mkdir "$NEW"
mv "$WORK/$ROOT/tests/unit/protocols/input" "$WORK/$ROOT/tests/unit/protocols/output" \
  "$WORK/$ROOT/tests/unit/protocols/protocol-tests-ignore-list.json" \
  "$WORK/$ROOT/LICENSE.txt" "$WORK/$ROOT/NOTICE" "$NEW/"
cat >"$NEW/README.md" <<EOF
# AWS protocol compliance cases

Fetched by scripts/protocol-tests.sh: the shared protocol test cases that AWS publishes for its
SDKs, as shipped in botocore ${BOTOCORE_VERSION} (the PyPI sdist, \`tests/unit/protocols/\`),
Apache-2.0 (see LICENSE.txt and NOTICE).

- \`input/<protocol>.json\`: for a model fragment and given parameters, the exact HTTP request
  (method, URI, headers, body) that a client must serialize.
- \`output/<protocol>.json\`: for an HTTP response, the exact result (or error) a client must parse.
- \`protocol-tests-ignore-list.json\`: cases botocore itself skips, with the reason.
EOF
echo "$BOTOCORE_VERSION" >"$NEW/VERSION"

rm -rf "$DEST"
mv "$NEW" "$DEST"
echo "protocol-tests: cases from botocore ${BOTOCORE_VERSION} in $DEST"
