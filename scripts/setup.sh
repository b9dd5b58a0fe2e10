#!/usr/bin/env bash
# Installs what Plinth and its tests need on a Debian machine (root): the Debian packages the
# tests use as real peers (an OCI registry, skopeo, umoci, htpasswd, openssl, debootstrap; rpm
# and sqlite3 write and read a real rpm database), then the npm packages, and builds the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pair in docker-registry:docker-registry skopeo:skopeo umoci:umoci htpasswd:apache2-utils openssl:openssl debootstrap:debootstrap zstd:zstd dpkg-query:dpkg rpmbuild:rpm sqlite3:sqlite3; do
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
