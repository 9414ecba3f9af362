#!/usr/bin/env bash
# Replica catch-up from a checkpoint: a master is filled with SIZE of
# message bodies that do not compress, then a replica started from nothing
# fetches a checkpoint of it (file by file, each chunk's CRC checked),
# installs it and follows the master's log. Runs the end-to-end test
# test_e2e_repl_catchup (which also checks the replica holds exactly the
# master's store) on a Release build and prints its figures:
#
#   catch-up: <MiB> MiB checkpoint in <s> s, <MB/s> MB/s; caught up <s> s after start
#
#   bench/repl_catchup.sh [SIZE]    SIZE in MiB, or with a G suffix; default 1G
#
# Everything runs on 127.0.0.1 on this machine; the stores go under
# ${TMPDIR:-/tmp} (twice SIZE and a little more).
#
# Environment:
#   BUILD_DIR   CMake build directory (default build/release-tests; built as
#               Release with the tests)
#   CMAKE_ARGS  extra arguments for the CMake configure step
set -euo pipefail

cd "$(dirname "$0")/.."
case "${1:-1G}" in
-h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
    ;;
*[0-9]G) mib=$((${1%G} * 1024)) ;;
*[0-9]M) mib=${1%M} ;;
*[0-9]) mib=$1 ;;
*)
    echo "usage: bench/repl_catchup.sh [SIZE]   (MiB, or e.g. 1G)" >&2
    exit 2
    ;;
esac

build_dir=${BUILD_DIR:-build/release-tests} # Release with the tests (the end-to-end test is the probe)
note() { printf 'repl_catchup: %s\n' "$*" >&2; }

note "building Release in $build_dir"
log=$(mktemp "${TMPDIR:-/tmp}/lsmq-repl-catchup-build-XXXXXX.log")
# shellcheck disable=SC2086 # CMAKE_ARGS is a list of words
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DLSMQ_TESTS=ON ${CMAKE_ARGS:-} >"$log" 2>&1 ||
    { cat "$log" >&2; exit 1; }
cmake --build "$build_dir" -j2 --target mqbroker test_e2e_repl_catchup >>"$log" 2>&1 ||
    { tail -40 "$log" >&2; exit 1; }
rm -f "$log"

note "$mib MiB: filling the master, then starting a replica from nothing"
out=$(mktemp "${TMPDIR:-/tmp}/lsmq-repl-catchup-XXXXXX.log")
status=0
LSMQ_CATCHUP_MIB=$mib "$build_dir/tests/e2e/test_e2e_repl_catchup" >"$out" 2>&1 || status=$?
if [ "$status" -ne 0 ] || ! grep -q '^catch-up: ' "$out"; then
    grep -v ' INFO ' "$out" | tail -30 >&2
    note "failed (status $status); output kept in $out"
    exit 1
fi
grep -E '^(filled the master|catch-up: )' "$out"
rm -f "$out"
