#!/usr/bin/env bash
# Install what the TypeScript workspace needs: npm packages from the lock file (only when the lock
# changed since the last install), and with --browser Debian's Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/../js"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node and npm are required (Node.js 20+): apt-get install nodejs npm, or see nodejs.org" >&2
  exit 1
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (browser tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
