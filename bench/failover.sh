#!/usr/bin/env bash
# Automatic failover under load: three controllers (in mqnamesrv), a
# SYNC_MASTER and two replicas in controller mode (heartbeat timeout 3 s,
# heartbeats every 500 ms), liblsmq producers and a consumer running. The
# master is killed (-9) CYCLES times (every fifth time the controller
# leader with it), each time restarted once another broker serves; then a
# planned electMaster under load. Runs the end-to-end test
# test_e2e_failover (which also checks, from every broker's store, that no
# acknowledged message is lost and no queue offset names two messages) on
# a Release build and prints its figures:
#
#   failover: cycles=N acknowledged=A lost=0 conflicts=0 duplicates=D consumed=C
#             worst_unavailable_ms=W mean_unavailable_ms=M
#   switch-over: ...; longest gap between SEND_OKs G ms
#
# "unavailable" is the time from the kill to the next SEND_OK anywhere.
#
#   bench/failover.sh [CYCLES]    default 20
#
# Environment:
#   BUILD_DIR   CMake build directory (default build/release-tests; built as
#               Release with the tests)
#   CMAKE_ARGS  extra arguments for the CMake configure step
set -euo pipefail

cd "$(dirname "$0")/.."
case "${1:-20}" in
-h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
    ;;
*[!0-9]*)
    echo "usage: bench/failover.sh [CYCLES]" >&2
    exit 2
    ;;
esac
cycles=${1:-20}

build_dir=${BUILD_DIR:-build/release-tests}
note() { printf 'failover: %s\n' "$*" >&2; }

note "building Release in $build_dir"
log=$(mktemp "${TMPDIR:-/tmp}/lsmq-failover-build-XXXXXX.log")
# shellcheck disable=SC2086 # CMAKE_ARGS is a list of words
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DLSMQ_TESTS=ON ${CMAKE_ARGS:-} >"$log" 2>&1 ||
    { cat "$log" >&2; exit 1; }
cmake --build "$build_dir" -j2 --target mqbroker mqnamesrv test_e2e_failover >>"$log" 2>&1 ||
    { tail -40 "$log" >&2; exit 1; }
rm -f "$log"

note "$cycles kills of the master, then a planned switch-over"
out=$(mktemp "${TMPDIR:-/tmp}/lsmq-failover-XXXXXX.log")
status=0
LSMQ_FAILOVER_CYCLES=$cycles "$build_dir/tests/e2e/test_e2e_failover" >"$out" 2>&1 || status=$?
if [ "$status" -ne 0 ] || ! grep -q '^failover: cycles=' "$out"; then
    grep -v ' INFO ' "$out" | tail -30 >&2
    note "failed (status $status); output kept in $out"
    exit 1
fi
grep -E '^(failover: cycles=|switch-over: )' "$out"
rm -f "$out"
