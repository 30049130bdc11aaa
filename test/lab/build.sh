#!/usr/bin/env bash
# Builds the JupyterLab 4 frontend of the end-to-end test (test/lab.test.ts) from the pinned npm packages
# in test/lab/app, once: the result is cached in .cache/lab4-<hash>/ (gitignored), keyed by the hash of the
# app's lockfile and sources, so later runs reuse it. Prints the app folder on its last line.
#   bash test/lab/build.sh            build if missing (npm ci ~1 min, webpack ~30 s on 2 cores)
#   FORCE=1 bash test/lab/build.sh    rebuild
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SRC=$HERE/app
KEY=$(cd "$SRC" && cat package.json package-lock.json index.js webpack.config.js templates/* | sha256sum | cut -c1-16)
APP=$ROOT/.cache/lab4-$KEY
if [ -f "$APP/build/bundle.js" ] && [ -z "${FORCE:-}" ]; then echo "$APP"; exit 0; fi
# Older builds of other lockfiles are stale: keep only this one.
rm -rf "$ROOT"/.cache/lab4-* && mkdir -p "$APP"
cp -r "$SRC"/package.json "$SRC"/package-lock.json "$SRC"/index.js "$SRC"/webpack.config.js "$SRC"/templates "$APP/"
cd "$APP"
# No install scripts: nothing in this tree needs one, and the repository's policy is scripts off.
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2
node node_modules/webpack/bin/webpack.js >&2
test -f build/bundle.js
echo "$APP"
