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
    python3 make g++ liblz4-dev zlib1g-dev graphviz libgvc6 git \
    containerd stargz-snapshotter >/dev/null
  # The FUSE control filesystem: a test aborts a connection through its files.
  mountpoint -q /sys/fs/fuse/connections || mount -t fusectl fusectl /sys/fs/fuse/connections
fi
# Every program the tests, examples, benchmarks and scripts start, each from a package
# installed above or from Debian's required base (test/setup/programs.test.ts holds the
# sources and this list to that).
programs=(cat chroot cmp containerd cp ctr-remote curl dd debootstrap docker-registry dot du find fsck.erofs
  fusermount fusermount3 getfattr git grep gzip head htpasswd losetup ls md5sum mkdir mkfifo mv
  mkfs.erofs mknod mksquashfs mount nginx openssl prlimit python3 readlink script setfattr sh
  sha256sum sleep squashfuse_ll stat strace tar touch truncate umount)
missing=()
for p in "${programs[@]}"; do command -v "$p" >/dev/null || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: missing programs: ${missing[*]} (run as root on Debian to install them)" >&2
  [ "$(id -u)" != 0 ] || exit 1
fi
npm ci --no-audit --no-fund
npm run build
