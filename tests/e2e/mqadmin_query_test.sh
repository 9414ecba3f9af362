#!/usr/bin/env bash
# End-to-end test of mqadmin's message queries and offset reset against a
# real mqbroker: starts the broker with an embedded name server on free
# loopback ports and a temporary store, produces two batches of messages
# with keys and tags (a point in time between them), and checks
# queryMsgByKey, queryMsgById, queryMsgByUniqueKey, queryMsgByOffset,
# printMsg and resetOffsetByTime in text and --json form, their refusals
# (exit 1 with the server's code and remark) and bad input (exit 2). The
# reset is checked on an offline group: consumerProgress shows the new
# offsets and lsmq-consume resumes from exactly the right messages. An
# online consumer is told of a reset too. Finally stops the broker with
# SIGTERM and requires a clean exit.
#
#   tests/e2e/mqadmin_query_test.sh BUILD_DIR
#
# Prints one line per check and a final "N passed, M failed"; exits 0 only
# when nothing failed.
set -uo pipefail

build="${1:?usage: mqadmin_query_test.sh BUILD_DIR}"
. "$(dirname "$0")/lib.sh"

require_bins "$mqadmin" "$produce" "$consume" "$broker_bin"

consumer_pid=""
trap 'kill_running "$consumer_pid" "$pid"' EXIT
start_broker mqadmin-query
export NAMESRV_ADDR="$ns"

# json_true PYEXPR (for check_json and wait_json): PYEXPR, over the JSON on
# stdin (`j`) and the message ids of the two batches (`b1`, `b2`, from the
# variables exported below), is true.
json_true() {
    python3 -c '
import json, os, sys
j = json.load(sys.stdin)
b1 = os.environ["B1_IDS"].split()
b2 = os.environ["B2_IDS"].split()
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" 2>"$tmp/pyerr"
}

bad_input() {
    local name="$1"
    shift
    check_bad_args "bad input: $name" "$mqadmin" "$@"
}

export B1_IDS="" B2_IDS=""

if wait_json "any(b['addr']=='$addr' for c in j['clusters'] for b in c['brokers'])" \
    "$mqadmin" clusterList --json; then
    pass "the broker registers with the name server"
else
    fail "the broker registers with the name server"
fi

# ---- messages: two batches with a point in time between them --------------

run "$mqadmin" updateTopic -c DefaultCluster -t QT -r 2 -w 2
check_rc "updateTopic QT" 0

run "$produce" -n "$NAMESRV_ADDR" -t QT --tags TagA --keys "order1 common" -c 3
check_count "batch 1: 3 messages sent" "^SEND_OK" 3
batch1="$out"
sleep 0.2
t_mid="$(now_ms)"
sleep 0.2
run "$produce" -n "$NAMESRV_ADDR" -t QT --tags TagB --keys "order2 common" -c 2
check_count "batch 2: 2 messages sent" "^SEND_OK" 2
batch2="$out"

field() { # field NAME LINES: the NAME= values of SEND_OK lines
    sed -n "s/^SEND_OK .*$1=\([^ ]*\).*/\1/p" <<<"$2"
}
B1_IDS="$(field msgId "$batch1" | tr '\n' ' ')"
B2_IDS="$(field msgId "$batch2" | tr '\n' ' ')"
export B1_IDS B2_IDS
first_id="$(field msgId "$batch1" | head -1)"
first_offset_id="$(field offsetMsgId "$batch1" | head -1)"
first_queue="$(field queue "$batch1" | head -1 | sed 's/.*://')"
first_qoffset="$(field offset "$batch1" | head -1)"
last_offset_id="$(field offsetMsgId "$batch2" | tail -1)"
# batch 1 filled each queue from offset 0: the offset for t_mid is its count there
expect_mid="$(field queue "$batch1" | sed 's/.*://' | sort | uniq -c |
    awk '{printf "%s\"%s\":%s", (n++ ? "," : ""), $2, $1}')"
export EXPECT_MID="{$expect_mid}"

# ---- help ---------------------------------------------------------------------

run "$mqadmin"
for cmd in queryMsgById queryMsgByKey queryMsgByUniqueKey queryMsgByOffset printMsg \
    resetOffsetByTime; do
    check_out "command list has $cmd" "^   $cmd "
done
run "$mqadmin" help queryMsgByKey
for o in "-t,--topic" "-k,--msgKey" "-b,--beginTimestamp" "-e,--endTimestamp" "-m,--maxNum"; do
    check_out "help queryMsgByKey shows $o" "^ *$o"
done
run "$mqadmin" help resetOffsetByTime
for o in "-g,--group" "-t,--topic" "-s,--timestamp" "-f,--force" "-b,--broker" "-q,--queue" \
    "-o,--offset"; do
    check_out "help resetOffsetByTime shows $o" "^ *$o"
done

# ---- queryMsgByKey --------------------------------------------------------------

run "$mqadmin" queryMsgByKey -t QT -k order1
check_rc "queryMsgByKey" 0
check_out "queryMsgByKey header" "^#Message ID +#QID +#Offset$"
check_count "queryMsgByKey finds batch 1" "^[0-9A-F]{32} +[0-9]+ +[0-9]+$" 3
for id in $B1_IDS; do check_out "queryMsgByKey lists $id" "^$id +[01] +[0-9]+$"; done
run "$mqadmin" queryMsgByKey -t QT -k common --json
check_json "queryMsgByKey --json: both batches" \
    "sorted(m['msgId'] for m in j['messages'])==sorted(b1+b2) and all('common' in m['keys'].split() for m in j['messages'])"
run "$mqadmin" queryMsgByKey -t QT -k order2 --json
check_json "queryMsgByKey --json: batch 2 only, with tags" \
    "sorted(m['msgId'] for m in j['messages'])==sorted(b2) and all(m['tags']=='TagB' for m in j['messages'])"
run "$mqadmin" queryMsgByKey -t QT -k common -b "$t_mid" --json
check_json "queryMsgByKey -b: only what was stored after" \
    "sorted(m['msgId'] for m in j['messages'])==sorted(b2)"
run "$mqadmin" queryMsgByKey -t QT -k common -e "$t_mid" --json
check_json "queryMsgByKey -e: only what was stored before" \
    "sorted(m['msgId'] for m in j['messages'])==sorted(b1)"
run "$mqadmin" queryMsgByKey -t QT -k common -s TagB --json
check_json "queryMsgByKey -s TagB: batch 2 only" \
    "sorted(m['msgId'] for m in j['messages'])==sorted(b2)"
run "$mqadmin" queryMsgByKey -t QT -k common -s 'TagA || TagB'
check_count "queryMsgByKey -s 'TagA || TagB': both batches" "^[0-9A-F]{32} +[0-9]+ +[0-9]+$" 5
run "$mqadmin" queryMsgByKey -t QT -k order1 -s TagB
check_rc "queryMsgByKey -s with no message of that tag exits 1" 1
check_err "no message of that tag" "but no message with tags TagB"
run "$mqadmin" queryMsgByKey -t QT -k common -m 1 --json
check_json "queryMsgByKey -m 1: the newest" "[m['msgId'] for m in j['messages']]==[b2[-1]]"

run "$mqadmin" queryMsgByKey -t NoSuchTopic -k order1
check_rc "queryMsgByKey of an unknown topic exits 1" 1
check_err "queryMsgByKey unknown topic remark" "CODE: 17 .*NoSuchTopic"
run "$mqadmin" queryMsgByKey -t QT -k order1 -b 2000 -e 1000
check_rc "queryMsgByKey with the end before the begin exits 1" 1
check_err "end before begin: the broker says which" \
    "CODE: 29  DESC: endTimestamp 1000 is before beginTimestamp 2000"
run "$mqadmin" queryMsgByKey -t QT -k nosuchkey
check_rc "queryMsgByKey without a match exits 1" 1
check_err "no match message" "but no message"
bad_input "queryMsgByKey -m many" queryMsgByKey -t QT -k order1 -m many
bad_input "queryMsgByKey -b soon" queryMsgByKey -t QT -k order1 -b soon
bad_input "queryMsgByKey without -k" queryMsgByKey -t QT

# ---- queryMsgById --------------------------------------------------------------------

run "$mqadmin" queryMsgById -t QT -i "$first_offset_id"
check_rc "queryMsgById by offset id" 0
check_out "queryMsgById shows the offset id" "^OffsetID: +$first_offset_id$"
check_out "queryMsgById shows the topic" "^Topic: +QT$"
check_out "queryMsgById shows the tags" "^Tags: +\[TagA\]$"
check_out "queryMsgById shows the keys" "^Keys: +\[order1 common\]$"
check_out "queryMsgById shows the queue" "^Queue ID: +$first_queue$"
check_out "queryMsgById shows the queue offset" "^Queue Offset: +$first_qoffset$"
check_out "queryMsgById shows the properties" "^Properties: +\{.*KEYS=order1 common.*\}$"
check_out "queryMsgById shows UNIQ_KEY" "^Properties: .*UNIQ_KEY=$first_id"
check_out "queryMsgById shows the body" "^Message Body: +message 0 x+$"
check_out "queryMsgById shows the store host" "^Store Host: +$addr$"
run "$mqadmin" queryMsgById -t QT -i "$first_id" --json
check_rc "queryMsgById by client id --json" 0
check_json "queryMsgById --json by client id" \
    "len(j['messages'])==1 and j['messages'][0]['msgId']=='$first_id' and j['messages'][0]['offsetMsgId']=='$first_offset_id' and j['messages'][0]['properties']['KEYS']=='order1 common' and j['messages'][0]['body'].startswith('message 0 ')"
run "$mqadmin" queryMsgById -t QT -i "$first_offset_id,$last_offset_id" --json
check_json "queryMsgById with two ids" \
    "[m['offsetMsgId'] for m in j['messages']]==['$first_offset_id','$last_offset_id']"
bad_input "queryMsgById with a malformed id" queryMsgById -t QT -i XYZ
run "$mqadmin" queryMsgById -t QT -i XYZ
check_err "malformed id message" "'XYZ' is not a message id"
missing_offset_id="${first_offset_id:0:16}00000000000FFFFF"
run "$mqadmin" queryMsgById -t QT -i "$missing_offset_id"
check_rc "queryMsgById of a position with no message exits 1" 1
check_err "the broker's not-found remark" "CODE: 1  DESC: can not find message by the offset, 1048575"
run "$mqadmin" queryMsgById -t NoSuchTopic -i "$first_offset_id"
check_rc "queryMsgById of an unknown topic exits 1" 1

# ---- queryMsgByUniqueKey -----------------------------------------------------------------

run "$mqadmin" queryMsgByUniqueKey -t QT -i "$first_id"
check_rc "queryMsgByUniqueKey" 0
check_out "queryMsgByUniqueKey shows the topic" "^Topic: +QT$"
check_out "queryMsgByUniqueKey shows the keys" "^Keys: +\[order1 common\]$"
check_out "queryMsgByUniqueKey shows the body" "^Message Body: +message 0 "
run "$mqadmin" queryMsgByUniqueKey -t QT -i "$first_id" -a --json
check_json "queryMsgByUniqueKey -a --json" \
    "[m['msgId'] for m in j['messages']]==['$first_id'] and j['messages'][0]['queueId']==$first_queue"
run "$mqadmin" queryMsgByUniqueKey -t QT -i 00000000000000000000000000000000
check_rc "queryMsgByUniqueKey of an unknown id exits 1" 1
bad_input "queryMsgByUniqueKey with a malformed id" queryMsgByUniqueKey -t QT -i nothex

# ---- queryMsgByOffset ------------------------------------------------------------------

run "$mqadmin" queryMsgByOffset -t QT -b broker-a -i "$first_queue" -o "$first_qoffset"
check_rc "queryMsgByOffset" 0
check_out "queryMsgByOffset finds the message" "^OffsetID: +$first_offset_id$"
run "$mqadmin" queryMsgByOffset -t QT -b broker-a -i "$first_queue" -o "$first_qoffset" --json
check_json "queryMsgByOffset --json" \
    "j['messages'][0]['msgId']=='$first_id' and j['messages'][0]['queueOffset']==$first_qoffset"
run "$mqadmin" queryMsgByOffset -t QT -b broker-a -i 0 -o 99
check_rc "queryMsgByOffset past the end exits 1" 1
check_err "past the end is explained" "no message at offset 99"
run "$mqadmin" queryMsgByOffset -t QT -b broker-z -i 0 -o 0
check_rc "queryMsgByOffset of an unknown broker exits 1" 1
bad_input "queryMsgByOffset -i x" queryMsgByOffset -t QT -b broker-a -i x -o 0

# ---- printMsg ------------------------------------------------------------------------------

run "$mqadmin" printMsg -t QT
check_rc "printMsg" 0
check_count "printMsg prints every message" "^MSGID: " 5
check_count "printMsg prints a range per queue" "^minOffset=[0-9]+, maxOffset=[0-9]+, MessageQueue \[topic=QT, brokerName=broker-a, queueId=[01]\]$" 2
check_out "printMsg prints bodies" "BODY: message [0-9] x+$"
run "$mqadmin" printMsg -t QT -d false
check_count "printMsg -d false hides bodies" "BODY: NOT PRINT BODY$" 5
run "$mqadmin" printMsg -t QT -s TagB --json
check_json "printMsg -s TagB: batch 2 only" \
    "sorted(m['msgId'] for q in j['queues'] for m in q['messages'])==sorted(b2)"
run "$mqadmin" printMsg -t QT -k order1 --json
check_json "printMsg -k order1: batch 1 only" \
    "sorted(m['msgId'] for q in j['queues'] for m in q['messages'])==sorted(b1)"
run "$mqadmin" printMsg -t QT -k order2 -s TagB
check_count "printMsg -k order2 -s TagB prints batch 2" "^MSGID: " 2
run "$mqadmin" printMsg -t QT -b "$t_mid" --json
check_json "printMsg -b: what was stored after" \
    "sorted(m['msgId'] for q in j['queues'] for m in q['messages'])==sorted(b2)"
run "$mqadmin" printMsg -t QT -e "$t_mid" --json
check_json "printMsg -e: what was stored before" \
    "sorted(m['msgId'] for q in j['queues'] for m in q['messages'])==sorted(b1)"
run "$mqadmin" printMsg -t NoSuchTopic
check_rc "printMsg of an unknown topic exits 1" 1
bad_input "printMsg -b tomorrow" printMsg -t QT -b tomorrow
bad_input "printMsg with the end before the begin" printMsg -t QT -b 2000 -e 1000

# ---- resetOffsetByTime on an offline group ---------------------------------------------

run "$consume" -n "$NAMESRV_ADDR" -t QT -g QG --from first --count 5 --timeout 30
check_count "lsmq-consume read all 5 messages" "." 5
if wait_json "j['diffTotal']==0 and sum(q['consumerOffset'] for q in j['queues'])==5" \
    "$mqadmin" consumerProgress -g QG --json; then
    pass "the group has consumed everything"
else
    fail "the group has consumed everything"
fi

run "$mqadmin" resetOffsetByTime -g QG -t QT -s "$t_mid" --json
check_rc "resetOffsetByTime of an offline group" 0
check_json "resetOffsetByTime --json: the offsets for the time" \
    "len(j['queues'])==2 and all(q['offset']==json.loads(os.environ['EXPECT_MID']).get(str(q['queueId']),0) for q in j['queues'])"
run "$mqadmin" consumerProgress -g QG --json
check_json "consumerProgress shows the reset offsets" \
    "sum(q['consumerOffset'] for q in j['queues'])==3 and j['diffTotal']==2"
run "$consume" -n "$NAMESRV_ADDR" -t QT -g QG --count 2 --timeout 30
check_rc "lsmq-consume resumes after the reset" 0
resumed="$(cut -f4 <<<"$out" | sort | tr '\n' ' ')"
expected="$(tr ' ' '\n' <<<"$B2_IDS" | grep . | sort | tr '\n' ' ')"
if [ "$resumed" = "$expected" ]; then
    pass "lsmq-consume resumes at batch 2, the first message stored after the time"
else
    fail "lsmq-consume resumes at batch 2 (got '$resumed', want '$expected')"
fi

run "$mqadmin" resetOffsetByTime -g QG -t QT -s 0
check_rc "resetOffsetByTime -s 0" 0
check_out "resetOffsetByTime prints what it did" \
    "^start reset consumer offset by specified, group\[QG\], topic\[QT\], force\[true\], timestamp\(string\)\[0\], timestamp\(long\)\[0\]$"
check_out "resetOffsetByTime table header" "^#brokerName +#queueId +#offset"
check_count "resetOffsetByTime table rows" "^broker-a +[01] +0 *$" 2
run "$mqadmin" resetOffsetByTime -g QG -t QT -s now -f false --json
check_json "without force a group never moves forward" "all(q['offset']==0 for q in j['queues'])"
run "$mqadmin" resetOffsetByTime -g QG -t QT -s now --json
check_json "-s now moves to the end" "sum(q['offset'] for q in j['queues'])==5"
mid_date="$(python3 -c 'import sys, time; t=int(sys.argv[1]); print(time.strftime("%Y-%m-%d#%H:%M:%S", time.localtime(t//1000)) + ":%03d" % (t%1000))' "$t_mid")"
run "$mqadmin" resetOffsetByTime -g QG -t QT -s "$mid_date" --json
check_rc "resetOffsetByTime with a yyyy-MM-dd#HH:mm:ss:SSS time" 0
check_json "the date form gives the same offsets" "sum(q['offset'] for q in j['queues'])==3"
run "$mqadmin" resetOffsetByTime -g QG -t QT -s 0 -b "$addr" -q 0 -o 0
check_rc "resetOffsetByTime of one queue to an offset" 0
check_out "one queue: the offset is shown" "^reset consumer offset to 0$"
run "$mqadmin" consumerProgress -g QG --json
check_json "only queue 0 moved" \
    "[q['consumerOffset'] for q in j['queues'] if q['queueId']==0]==[0] and sum(q['consumerOffset'] for q in j['queues'])>0"

run "$mqadmin" resetOffsetByTime -g NoSuchGroup -t QT -s now
check_rc "resetOffsetByTime of an unknown group exits 1" 1
check_err "unknown group remark" "CODE: 26  DESC: Group NoSuchGroup does not exist"
run "$mqadmin" resetOffsetByTime -g QG -t NoSuchTopic -s now
check_rc "resetOffsetByTime of an unknown topic exits 1" 1
check_err "unknown topic remark" "CODE: 17 .*NoSuchTopic"
bad_input "resetOffsetByTime -s yesterday" resetOffsetByTime -g QG -t QT -s yesterday
bad_input "resetOffsetByTime -q without -b" resetOffsetByTime -g QG -t QT -s now -q 0
bad_input "resetOffsetByTime -f maybe" resetOffsetByTime -g QG -t QT -s now -f maybe

# ---- resetOffsetByTime with a consumer online ----------------------------------------

# wait_lines FILE N: up to ~15 s for FILE to hold at least N lines.
wait_lines() {
    for _ in $(seq 1 150); do
        if [ "$(grep -c . "$1")" -ge "$2" ]; then return 0; fi
        sleep 0.1
    done
    return 1
}

# A new group starts a queue that begins at 0 from 0: the live consumer
# reads the 5 messages once, then again after the reset.
"$consume" -n "$NAMESRV_ADDR" -t QT -g QLive --timeout 30 >"$tmp/live.out" 2>&1 &
consumer_pid=$!
if wait_json "len(j['connections'])==1" "$mqadmin" consumerConnection -g QLive --json &&
    wait_lines "$tmp/live.out" 5; then
    pass "the live consumer is connected and has read the topic"
else
    fail "the live consumer is connected and has read the topic"
fi
if wait_json "j['diffTotal']==0" "$mqadmin" consumerProgress -g QLive --json; then
    pass "the live consumer has committed its offsets"
else
    fail "the live consumer has committed its offsets"
fi
run "$mqadmin" resetOffsetByTime -g QLive -t QT -s 0 --json
check_rc "resetOffsetByTime of an online group" 0
check_json "online group: offsets reset to 0" "all(q['offset']==0 for q in j['queues'])"
if grep -Eq "reset offsets of group QLive in topic QT .* 1 online consumers told" "$log"; then
    pass "the online consumer was told (RESET_CONSUMER_CLIENT_OFFSET)"
else
    fail "the online consumer was told (RESET_CONSUMER_CLIENT_OFFSET)"
fi
wait_lines "$tmp/live.out" 10
out="$(tail -n +6 "$tmp/live.out")"
reread="$(cut -f4 <<<"$out" | sort | tr '\n' ' ')"
all_ids="$(tr ' ' '\n' <<<"$B1_IDS $B2_IDS" | grep . | sort | tr '\n' ' ')"
if [ "$reread" = "$all_ids" ]; then
    pass "the online consumer re-reads the topic from the reset offsets"
else
    fail "the online consumer re-reads the topic from the reset offsets (got '$reread')"
fi
kill -TERM "$consumer_pid" 2>/dev/null
wait "$consumer_pid" 2>/dev/null
consumer_pid=""

# ---- shutdown ---------------------------------------------------------------

stop_broker
finish
