#!/usr/bin/env bash
# Runs the Go-client interop scenarios (github.com/apache/rocketmq-client-go/v2, version
# pinned in go.mod) against a name server and its brokers.
#
#   tests/interop/go/run.sh NAMESRV_ADDR [scenario...]
#
# NAMESRV_ADDR: host:port of the name server ("-" takes $NAMESRV_ADDR).
# Scenarios (default all): produce-consume autocreate clustering offset-resume retry
# Environment:
#   LSMQ_INTEROP_TIMEOUT  per-scenario bound in seconds, default 58 (the program enforces it;
#                         the shell kills the process 20 s later if it is still running)
#   LSMQ_INTEROP_VERBOSE=1  print each scenario's progress lines
#   LSMQ_INTEROP_WAIT_READY seconds to wait first until the name server routes TBW102 (a broker
#                         registered), default 50
#   GO                    go binary, default go
#
# Downloads the modules (go mod download, checked against go.sum), builds bin/interop, waits
# for a broker, runs every scenario in its own process, prints its PASS/FAIL line and ends with
# "N passed, M failed"; exits 1 if anything failed.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
ns="${1:-}"
if [[ -z "$ns" || "$ns" == "-h" || "$ns" == "--help" ]]; then
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
shift
if [[ "$ns" == "-" ]]; then
    ns="${NAMESRV_ADDR:?NAMESRV_ADDR is not set}"
fi
scenarios=("$@")
if [[ ${#scenarios[@]} -eq 0 ]]; then
    scenarios=(produce-consume autocreate clustering offset-resume retry)
fi
timeout_s="${LSMQ_INTEROP_TIMEOUT:-58}"
go="${GO:-go}"
verbose=()
[[ "${LSMQ_INTEROP_VERBOSE:-0}" == "1" ]] && verbose=(-v)

cd "$here" || exit 2
t0=$SECONDS
if ! "$go" mod download >/tmp/lsmq-interop-go-download.log 2>&1 || ! "$go" mod verify >>/tmp/lsmq-interop-go-download.log 2>&1; then
    tail -20 /tmp/lsmq-interop-go-download.log
    echo "FAIL setup: go mod download/verify"
    echo "0 passed, ${#scenarios[@]} failed"
    exit 1
fi
if ! "$go" build -o bin/interop . 2>/tmp/lsmq-interop-go-build.log; then
    cat /tmp/lsmq-interop-go-build.log
    echo "FAIL setup: go build"
    echo "0 passed, ${#scenarios[@]} failed"
    exit 1
fi
echo "built $here/bin/interop in $((SECONDS - t0)) s"
if ! "$here/bin/interop" -namesrv "$ns" -wait-ready "${LSMQ_INTEROP_WAIT_READY:-50}s" 2>/dev/null; then
    echo "0 passed, ${#scenarios[@]} failed"
    exit 1
fi

passed=0
failed=0
failures=()
for s in "${scenarios[@]}"; do
    t=$SECONDS
    out="$(timeout -k 5 $((timeout_s + 20)) "$here/bin/interop" -namesrv "$ns" -scenario "$s" \
        -timeout "${timeout_s}s" "${verbose[@]}" 2>&1)"
    rc=$?
    # the client library may still print to stderr: keep our own lines only
    grep -E '^(PASS |FAIL |  \[)' <<<"$out"
    if [[ $rc -eq 0 ]] && grep -q "^PASS $s " <<<"$out"; then
        passed=$((passed + 1))
    else
        grep -q "^FAIL $s " <<<"$out" || echo "FAIL $s $((SECONDS - t))s: exit status $rc without a verdict"
        failed=$((failed + 1))
        failures+=("$s")
    fi
done
[[ $failed -gt 0 ]] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
