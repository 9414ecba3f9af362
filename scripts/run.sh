#!/usr/bin/env bash
# Installs dependencies, builds Release and starts lsmq with its defaults: a
# broker on port 10911 with a name server in the same process on port 9876,
# data under ./data. Extra arguments go to mqbroker (--key=value with
# RocketMQ's broker.conf names, e.g. --flushDiskType=SYNC_FLUSH).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DLSMQ_TESTS=OFF >/dev/null
cmake --build build/release -j2
exec build/release/server/mqbroker --embedded-namesrv --storePathRootDir=./data \
    --brokerIP1=127.0.0.1 "$@"
