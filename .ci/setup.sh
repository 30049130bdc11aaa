#!/usr/bin/env bash
# One-time setup on a fresh Debian 12 machine (run as root, or with apt packages already present):
# the system packages the tests and the demo use (jupyter-client provides the `jupyter kernelspec`
# command), then the npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
# python3-jupyter-server + python3-jupyterlab-server serve the real JupyterLab 4 of test/lab.test.ts.
APT_PACKAGES=(chromium fonts-dejavu-core python3-nbclient python3-nbconvert jupyter-notebook python3-jupyter-kernel-test
  python3-jupyter-server python3-jupyterlab-server jupyter-client)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "setup: missing Debian packages: ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run build
