#!/usr/bin/env bash
# Installs the Debian packages lsmq builds and tests with; a no-op when all
# are present. Runs as root or through sudo.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  librocksdb-dev libsnappy-dev libzstd-dev liblz4-dev zlib1g-dev libbz2-dev
  libev-dev libcmocka-dev libjansson-dev uthash-dev
  # the controller's raft (canonical raft over libuv)
  libraft-dev libuv1-dev
  clang libclang-rt-14-dev
  rocksdb-tools
  python3
  # ip netns, tc and nft: the replication test that cuts and slows the link
  # between a master and its replica (tests/e2e/repl_netfault_test.sh)
  iproute2 nftables
)

# The interop suites need Java + Maven, Go and Node.js; the machine images
# this runs on ship them, and Debian's packages stand in where one is missing.
command -v java >/dev/null 2>&1 || packages+=(default-jdk-headless)
command -v mvn >/dev/null 2>&1 || packages+=(maven)
command -v go >/dev/null 2>&1 || packages+=(golang-go)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
