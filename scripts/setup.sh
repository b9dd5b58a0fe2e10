#!/usr/bin/env bash
# Installs what Plinth and its tests need on a Debian machine (root): the Debian packages the
# tests use as real peers (an OCI registry, skopeo, umoci, htpasswd, openssl, debootstrap; rpm
# and sqlite3 write and read a real rpm database), then the npm packages, and builds the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pair in docker-registry:docker-registry skopeo:skopeo umoci:umoci htpasswd:apache2-utils openssl:openssl debootstrap:debootstrap zstd:zstd dpkg-query:dpkg rpmbuild:rpm sqlite3:sqlite3 wrk:wrk; do
  cmd=${pair%%:*}; pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${need[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "setup: apt-get install ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's package may start a registry service on :5000; the tests start their own on random ports.
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
npm run build --silent
# A real Debian rootfs and its OCI image for the package/vulnerability tests and the benchmarks,
# made once and kept in .cache/ (about 30 s with debootstrap; needs Debian's mirror, like apt).
if [ ! -f .cache/rootfs-bookworm/var/lib/dpkg/status ] && [ "$(id -u)" -eq 0 ]; then
  mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "setup: debootstrap --variant=minbase bookworm .cache/rootfs-bookworm ($mirror)" >&2
  rm -rf .cache/rootfs-bookworm && mkdir -p .cache
  debootstrap --variant=minbase bookworm .cache/rootfs-bookworm "$mirror" > .cache/debootstrap.log 2>&1 \
    || { echo "setup: debootstrap failed (see .cache/debootstrap.log); the tests that need it will be skipped" >&2; rm -rf .cache/rootfs-bookworm; }
fi
if [ -f .cache/rootfs-bookworm/var/lib/dpkg/status ] && [ ! -f .cache/deb-layout/index.json ]; then
  rm -rf .cache/deb-layout
  umoci init --layout .cache/deb-layout && umoci new --image .cache/deb-layout:deb \
    && umoci insert --image .cache/deb-layout:deb .cache/rootfs-bookworm / > /dev/null
fi
