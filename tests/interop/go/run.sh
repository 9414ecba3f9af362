#!/usr/bin/env bash
# Runs the Go-client interop scenarios (github.com/apache/rocketmq-client-go/v2, version
# pinned in go.mod) against a name server and its brokers.
#
#   tests/interop/go/run.sh NAMESRV_ADDR [scenario...]
#
# NAMESRV_ADDR: host:port of the name server ("-" takes $NAMESRV_ADDR).
# Scenarios (default all): produce-consume autocreate clustering offset-resume retry
#   delay-level retry-backoff
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
# shellcheck source=../lib.sh
source "$here/../lib.sh"
interop_args "$0" produce-consume autocreate clustering offset-resume retry delay-level \
    retry-backoff -- "$@"
timeout_s="${LSMQ_INTEROP_TIMEOUT:-58}"
go="${GO:-go}"
verbose=()
[[ "${LSMQ_INTEROP_VERBOSE:-0}" == "1" ]] && verbose=(-v)

cd "$here" || exit 2
t0=$SECONDS
if ! "$go" mod download >/tmp/lsmq-interop-go-download.log 2>&1 || ! "$go" mod verify >>/tmp/lsmq-interop-go-download.log 2>&1; then
    tail -20 /tmp/lsmq-interop-go-download.log
    interop_setup_failed "go mod download/verify"
fi
if ! "$go" build -o bin/interop . 2>/tmp/lsmq-interop-go-build.log; then
    cat /tmp/lsmq-interop-go-build.log
    interop_setup_failed "go build"
fi
echo "built $here/bin/interop in $((SECONDS - t0)) s"
if ! "$here/bin/interop" -namesrv "$ns" -wait-ready "${LSMQ_INTEROP_WAIT_READY:-50}s" 2>/dev/null; then
    interop_nothing_ran
fi

for s in "${scenarios[@]}"; do
    t=$SECONDS
    out="$(timeout -k 5 $((timeout_s + 20)) "$here/bin/interop" -namesrv "$ns" -scenario "$s" \
        -timeout "${timeout_s}s" "${verbose[@]}" 2>&1)"
    interop_judge "$s" $? "$out" "$t"
done
interop_summary
