#!/usr/bin/env bash
# End-to-end test of lsmq-produce's delayed sends against a real mqbroker
# (messageDelayLevel "1s 2s 8s"): --delay 3, --delay-ms 8000, --deliver-at
# in ms since the epoch and in RocketMQ's date text, each sent about 8 s
# ahead (long enough for every send to be done while they are pending). A
# consumer running from before the sends must get each message once, not
# before its due time (50 ms of tolerance: one machine's clock); topicStatus
# shows nothing in the topic's queues while they are pending. Bad
# combinations are usage errors. Finally SIGTERM, and a clean exit.
#
#   tests/e2e/produce_delay_test.sh BUILD_DIR
#
# Prints one line per check and a final "N passed, M failed"; exits 0 only
# when nothing failed.
set -uo pipefail

build="${1:?usage: produce_delay_test.sh BUILD_DIR}"
. "$(dirname "$0")/lib.sh"

require_bins "$mqadmin" "$produce" "$consume" "$broker_bin"

consumer_pid=""
trap 'kill_running "$consumer_pid" "$pid"' EXIT
start_broker produce-delay "--messageDelayLevel=1s 2s 8s" --diskMaxUsedSpaceRatio=99
export NAMESRV_ADDR="$ns"

# ---- usage -------------------------------------------------------------------

check_bad_args "two delays at once" "$produce" -n "$ns" -t DT --delay 2 --delay-ms 10
check_bad_args "a bad --deliver-at" "$produce" -n "$ns" -t DT --deliver-at tomorrow
check_bad_args "a negative --delay-ms" "$produce" -n "$ns" -t DT --delay-ms -5

# ---- sends -------------------------------------------------------------------

run "$mqadmin" updateTopic -n "$ns" -b "$addr" -t DT -r 4 -w 4
check_rc "updateTopic DT" 0
sleep 1

# The consumer runs from before the sends; each line gets its arrival time.
"$consume" -n "$ns" -t DT -g DG --from first --count 4 --timeout 60 --body-only \
    2>"$tmp/consume.err" | python3 -c "$stamp" >"$tmp/consumed" &
consumer_pid=$!
sleep 2

declare -A due
send() { # send BODY DUE_MS OPTION...
    local body="$1" at="$2"
    shift 2
    run "$produce" -n "$ns" -t DT "$@" <<<"$body"
    check_out "lsmq-produce $* is acknowledged" "^SEND_OK msgId="
    due[$body]="$at"
}
t="$(now_ms)"
send level "$((t + 8000))" --delay 3
t="$(now_ms)"
send delayms "$((t + 8000))" --delay-ms 8000
at="$(($(now_ms) + 8000))"
send epoch "$at" --deliver-at "$at"
at="$(($(now_ms) + 8500))"
text="$(python3 -c "
import sys, time
s = int(sys.argv[1])
print(time.strftime('%Y-%m-%d#%H:%M:%S', time.localtime(s // 1000)) + ':%03d' % (s % 1000))
" "$at")"
send datetext "$at" --deliver-at "$text"

run "$mqadmin" topicStatus -t DT --json
check_json "topicStatus: the pending messages are not in the queues yet" \
    "sum(q['maxOffset'] for q in j['queues'])==0"

wait "$consumer_pid"
consumer_pid=""
out="$(cat "$tmp/consumed")"
err="$(cat "$tmp/consume.err")"
check_count "the consumer got 4 messages" "." 4
for body in level delayms epoch datetext; do
    n="$(awk -v b="$body" '$2==b' <<<"$out" | wc -l)"
    got="$(awk -v b="$body" '$2==b {print $1; exit}' <<<"$out")"
    want="${due[$body]}"
    if [ "$n" -eq 1 ] && [ "$got" -ge "$((want - 50))" ] && [ "$got" -le "$((want + 10000))" ]; then
        pass "$body delivered once, $((got - want)) ms after its due time"
    else
        fail "$body delivered once, on time ($n times, at $got, due $want)"
    fi
done

# ---- shutdown ---------------------------------------------------------------

stop_broker
finish
