#!/usr/bin/env bash
# Builds the JupyterLab frontend of the end-to-end test (test/lab.test.ts) from the pinned npm packages in
# test/lab/app (JupyterLab 4.6), once: the result is cached in .cache/lab4-<hash>/ (gitignored), keyed by the
# hash of the app's lockfile and sources, so later runs reuse it. Prints the app folder on its last line.
#   bash test/lab/build.sh            build if missing (npm ci ~1 min, webpack ~10 s; several minutes on a busy machine)
#   FORCE=1 bash test/lab/build.sh    rebuild
#   LAB=3 bash test/lab/build.sh      JupyterLab 3.6.8 from test/lab/app36 (.cache/lab3-<hash>), for the by-hand check
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
if [ "${LAB:-4}" = 3 ]; then SRC=$HERE/app36 KIND=lab3; else SRC=$HERE/app KIND=lab4; fi
# Both versions serve the same page templates (test/lab/templates): JupyterLab 3.6 and 4.x read the same
# page_config and load the one bundle.js.
KEY=$(cd "$SRC" && cat package.json package-lock.json index.js webpack.config.js "$HERE"/templates/* | sha256sum | cut -c1-16)
APP=$ROOT/.cache/$KIND-$KEY
if [ -f "$APP/build/bundle.js" ] && [ -z "${FORCE:-}" ]; then echo "$APP"; exit 0; fi
# Older builds of other lockfiles are stale: keep only this one.
rm -rf "$ROOT"/.cache/"$KIND"-* && mkdir -p "$APP"
cp -r "$SRC"/package.json "$SRC"/package-lock.json "$SRC"/index.js "$SRC"/webpack.config.js "$HERE"/templates "$APP/"
cd "$APP"
# No install scripts: nothing in this tree needs one, and the repository's policy is scripts off.
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2
node node_modules/webpack/bin/webpack.js >&2
test -f build/bundle.js
echo "$APP"
