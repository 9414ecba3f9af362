#!/usr/bin/env bash
# Installs dependencies, builds with AddressSanitizer and UBSan, fuzzes the
# protocol decoders for a bounded time, and runs every test through ctest.
# A Release build of the whole tree comes first: optimisation enables
# warnings (-Werror) that the Debug build never sees.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build/release-check -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release-check -j2 >/dev/null
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DLSMQ_SANITIZE=ON >/dev/null
cmake --build build/asan -j2
# The protocol decoders under libFuzzer, a bounded time per target.
FUZZ_SECONDS="${FUZZ_SECONDS:-60}" scripts/fuzz.sh
cd build/asan
ctest -j2 --output-on-failure "$@"
