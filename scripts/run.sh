#!/usr/bin/env bash
# Installs dependencies, builds Release and starts lsmq with its defaults,
# data under ./data. Until the network front end exists this runs the engine
# demo: it appends to and reads back from a store under ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j2
exec build/release/tools/lsmq-engine-demo --storePathRootDir=./data "$@"
