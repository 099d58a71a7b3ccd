#!/usr/bin/env bash
# Set-up on a fresh Debian machine (run as root): the system packages the daemon,
# its tests and benchmarks use, then the npm dependencies (native addons are built
# from source by node-gyp) and the TypeScript build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    fuse3 libfuse2 attr kmod util-linux tar \
    squashfuse squashfs-tools erofs-utils \
    docker-registry nginx-light apache2-utils openssl strace debootstrap curl ca-certificates \
    python3 make g++ liblz4-dev zlib1g-dev graphviz >/dev/null
fi
npm ci --no-audit --no-fund
npm run build
