#!/usr/bin/env bash
# Runs the ali-ons (Node.js) interop scenarios against a name server and its brokers.
#
#   tests/interop/node/run.sh NAMESRV_ADDR [scenario...]
#
# NAMESRV_ADDR: host:port of the name server ("-" takes $NAMESRV_ADDR).
# Scenarios (default all): produce-consume clustering offset-resume retry reset-by-time
#   delay-level start-deliver-time
# Environment:
#   LSMQ_CREATE_TOPIC_CMD  shell command run before each scenario produces, with {topic} and
#                          {namesrv} replaced; it must exit 0 once the name server routes the
#                          topic (ali-ons cannot create topics). Default: the Go suite's helper,
#                          built here, which lets the broker auto-create the topic by sending
#                          one message with the Go client:
#                            tests/interop/go/bin/interop -namesrv {namesrv} -create-topic {topic}
#                          With an admin tool, e.g.:
#                            LSMQ_CREATE_TOPIC_CMD='mqadmin updateTopic -n {namesrv} -c DefaultCluster -t {topic}'
#   LSMQ_INTEROP_TIMEOUT   per-scenario bound in seconds, default 58 (enforced by the script;
#                          the shell kills the process 20 s later if it is still running)
#   LSMQ_INTEROP_VERBOSE=1 print each scenario's progress lines
#   LSMQ_INTEROP_WAIT_READY seconds to wait first until the name server routes TBW102 (a broker
#                          registered), default 50; only with the default topic creation
#
# Installs the pinned dependencies (npm ci, from package-lock.json), runs every scenario in its
# own node process, prints its PASS/FAIL line and ends with "N passed, M failed"; exits 1 if
# anything failed.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib.sh
source "$here/../lib.sh"
interop_args "$0" produce-consume clustering offset-resume retry reset-by-time delay-level \
    start-deliver-time -- "$@"
timeout_s="${LSMQ_INTEROP_TIMEOUT:-58}"

cd "$here" || exit 2
t0=$SECONDS
if ! npm ci --prefer-offline --no-audit --no-fund >/tmp/lsmq-interop-npm.log 2>&1; then
    tail -20 /tmp/lsmq-interop-npm.log
    interop_setup_failed "npm ci"
fi
echo "npm ci done in $((SECONDS - t0)) s"
v="$(node -p 'require("ali-ons/package.json").version' 2>/dev/null)"
[[ "$v" == "3.12.0" ]] || interop_setup_failed "ali-ons in node_modules is '$v', expected 3.12.0"

if [[ -z "${LSMQ_CREATE_TOPIC_CMD:-}" ]]; then
    gohere="$here/../go"
    if ! (cd "$gohere" && go build -o bin/interop .) >/tmp/lsmq-interop-go-helper.log 2>&1; then
        cat /tmp/lsmq-interop-go-helper.log
        interop_setup_failed "LSMQ_CREATE_TOPIC_CMD is not set and the Go helper does not build"
    fi
    export LSMQ_CREATE_TOPIC_CMD="$gohere/bin/interop -namesrv {namesrv} -create-topic {topic}"
    if ! "$gohere/bin/interop" -namesrv "$ns" -wait-ready "${LSMQ_INTEROP_WAIT_READY:-50}s" 2>/dev/null; then
        interop_nothing_ran
    fi
fi
echo "topic creation: $LSMQ_CREATE_TOPIC_CMD"

for s in "${scenarios[@]}"; do
    t=$SECONDS
    out="$(NAMESRV="$ns" LSMQ_INTEROP_TIMEOUT="$timeout_s" timeout -k 5 $((timeout_s + 20)) \
        node "$here/interop.js" "$s" 2>&1)"
    interop_judge "$s" $? "$out" "$t"
done
interop_summary
