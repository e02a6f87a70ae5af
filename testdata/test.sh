#!/usr/bin/env bash
# The whole vpndiag test suite: installs what it needs (Debian packages and
# goreleaser), then runs gofmt, go vet, every unit, corpus-oracle and lab
# test, a bounded run of every fuzz target, and a goreleaser check and
# snapshot build. Lab tests build network namespaces and need root.
#
#   sudo bash testdata/test.sh            # everything
#   FUZZTIME=30s sudo bash testdata/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}
GORELEASER_VERSION=v2.16.0
WIREGUARD_GO_VERSION=v0.0.0-20260522210424-ecfc5a8d5446 # userspace WireGuard for the lab
APT_PACKAGES="tcpdump openssh-server openssh-client sudo tshark wireshark-common iperf3 nftables iptables conntrack dnsmasq-base iproute2 ethtool iputils-ping bird2 wireguard-tools procps time util-linux bsdutils chromium"

step() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "testdata/test.sh: the lab tests build network namespaces and need root: run it with sudo" >&2
  exit 1
fi
if [ ! -d ../shared/corpus ]; then
  echo "testdata/test.sh: ../shared/corpus is missing: the corpus tests read the shared captures beside the repository" >&2
  exit 1
fi

step "Debian packages"
missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $missing >/dev/null
fi

export PATH="$PATH:$(go env GOPATH)/bin"
if ! goreleaser --version 2>/dev/null | grep -q "${GORELEASER_VERSION#v}"; then
  step "goreleaser $GORELEASER_VERSION"
  GOFLAGS= go install "github.com/goreleaser/goreleaser/v2@$GORELEASER_VERSION"
fi

if ! command -v wireguard >/dev/null; then
  step "wireguard-go $WIREGUARD_GO_VERSION"
  GOFLAGS= go install "golang.zx2c4.com/wireguard@$WIREGUARD_GO_VERSION"
fi

step "gofmt"
bad=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi

step "go vet"
go vet ./... ./testdata/lab/...

step "build (CGO_ENABLED=0)"
CGO_ENABLED=0 go build -o /dev/null ./cmd/vpndiag

step "go test (unit, corpus oracle, lab)"
# -p 1: one package at a time, so the lab's latency and outage measurements
# (ping vs iputils, watch outages, throughput vs iperf3) are not skewed by
# other packages' tests competing for the two cores.
go test -p 1 -count=1 -timeout 30m ./... ./testdata/lab/...

step "fuzz (each target for $FUZZTIME)"
for file in $(git grep -l '^func Fuzz' -- '*_test.go'); do
  pkg="./$(dirname "$file")"
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
    echo "fuzz $pkg $target"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" >/tmp/vpndiag-fuzz.log 2>&1 || { cat /tmp/vpndiag-fuzz.log; exit 1; }
  done
done

step "goreleaser check and snapshot build"
goreleaser check
goreleaser release --snapshot --clean --skip=publish >/tmp/vpndiag-goreleaser.log 2>&1 || { tail -50 /tmp/vpndiag-goreleaser.log; exit 1; }
ls dist/*.deb dist/*.rpm dist/*.tar.gz dist/*.zip dist/checksums.txt
rm -rf dist

step "all tests passed"
