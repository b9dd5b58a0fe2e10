#!/usr/bin/env bash
# Builds the real peer tools the tests and benchmarks use as oracles and baselines (Plinth never
# calls them at run time) from the Go module proxy, pinned, into
# ${PLINTH_PEERS_DIR:-$HOME/.cache/plinth/peers}: each tool in a folder named by its version
# (NAME@VERSION/NAME), linked from bin/. Outside the clone, so a fresh clone on the same machine
# reuses them; only a new machine builds them. Prints how long each build took.
#   scripts/peers.sh            build what is missing (all of them)
#   scripts/peers.sh --list     print NAME VERSION MODULE for each pin
set -euo pipefail
PEERS=${PLINTH_PEERS_DIR:-$HOME/.cache/plinth/peers}
# name version module package-in-module (one line each; `--list` prints them for the tests)
PINS='
cosign   v3.1.3  github.com/sigstore/cosign/v3             ./cmd/cosign
crane    v0.22.1 github.com/google/go-containerregistry    ./cmd/crane
notation v1.3.2  github.com/notaryproject/notation         ./cmd/notation
kubesec  v2.14.2 github.com/controlplaneio/kubesec/v2      .
regctl   v0.11.7 github.com/regclient/regclient            ./cmd/regctl
helm     v4.3.1  helm.sh/helm/v4                           ./cmd/helm
'
if [ "${1:-}" = "--list" ]; then
  echo "$PINS" | sed '/^$/d' | awk '{print $1, $2, $3}'
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "peers: Go is not installed; the peer tools (cosign, crane, notation, kubesec, regctl, helm) cannot be built (apt-get install golang-go, or Go >= 1.25 from go.dev)" >&2
  exit 1
fi
mkdir -p "$PEERS/bin"
failed=()
# `go install M/P@V` first; when the module proxy refuses the module's version list (it does for
# some modules, and go install asks for it to look for deprecations), the module's own source is
# downloaded at that exact version and built with its own go.mod and go.sum, which is the same build.
build() { # name version module pkg outdir
  local pkg_path=$3${4#.}
  if CGO_ENABLED=0 GOBIN="$5" GOFLAGS=-trimpath go install "$pkg_path@$2"; then return 0; fi
  echo "peers: go install refused; building $3@$2 from its module source" >&2
  local src work
  src=$(go mod download -json "$3@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] || return 1
  work=$(mktemp -d)
  cp -r "$src/." "$work" && chmod -R u+w "$work"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$2" -o "$5/$1" "$4")
  local rc=$?
  rm -rf "$work"
  return $rc
}
while read -r name version module pkg; do
  [ -n "$name" ] || continue
  dir="$PEERS/$name@$version"
  if [ ! -x "$dir/$name" ]; then
    echo "peers: go install $module${pkg#.}@$version (first time on this machine; cached in $dir)" >&2
    start=$(date +%s)
    mkdir -p "$dir.tmp"
    if build "$name" "$version" "$module" "$pkg" "$dir.tmp" > "$PEERS/$name@$version.log" 2>&1; then
      rm -rf "$dir" && mv "$dir.tmp" "$dir"
      echo "peers: built $name $version in $(( $(date +%s) - start )) s" >&2
    else
      rm -rf "$dir.tmp"
      echo "peers: building $name $version failed, see $PEERS/$name@$version.log" >&2
      failed+=("$name")
      continue
    fi
  fi
  ln -sfn "../$name@$version/$name" "$PEERS/bin/$name"
done <<< "$PINS"
if [ ${#failed[@]} -gt 0 ]; then
  echo "peers: could not build: ${failed[*]}" >&2
  exit 1
fi
