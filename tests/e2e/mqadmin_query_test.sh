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
mqadmin="$build/tools/mqadmin"
produce="$build/tools/lsmq-produce"
consume="$build/tools/lsmq-consume"
broker_bin="$build/server/mqbroker"

passed=0
failed=0
out=""
err=""
rc=0

for bin in "$mqadmin" "$produce" "$consume" "$broker_bin"; do
    if [ ! -x "$bin" ]; then
        echo "missing $bin: build the tree first" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
done

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

now_ms() {
    python3 -c 'import time; print(int(time.time()*1000))'
}

tmp="$(mktemp -d "${TMPDIR:-/tmp}/lsmq-mqadmin-query-XXXXXX")"
port="$(free_port)"
ns_port="$(free_port)"
addr="127.0.0.1:$port"
export NAMESRV_ADDR="127.0.0.1:$ns_port"
log="$tmp/broker.log"
consumer_pid=""

"$broker_bin" --embedded-namesrv --embeddedNamesrvPort="$ns_port" --listenPort="$port" \
    --brokerIP1=127.0.0.1 --storePathRootDir="$tmp/data" >"$log" 2>&1 &
pid=$!

cleanup() {
    if [ -n "$consumer_pid" ] && kill -0 "$consumer_pid" 2>/dev/null; then
        kill -9 "$consumer_pid" 2>/dev/null
        wait "$consumer_pid" 2>/dev/null
    fi
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
}
trap cleanup EXIT

for _ in $(seq 1 200); do
    if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.05
done

# ---- helpers ---------------------------------------------------------------

# Run a command; keep its stdout in $out, stderr in $err, status in $rc.
run() {
    out="$("$@" 2>"$tmp/stderr")"
    rc=$?
    err="$(cat "$tmp/stderr")"
}

pass() {
    passed=$((passed + 1))
    echo "ok - $1"
}

fail() {
    failed=$((failed + 1))
    echo "FAIL - $1"
    echo "  status: $rc"
    echo "  stdout: $(head -20 <<<"$out")"
    echo "  stderr: $(head -20 <<<"$err")"
}

check_rc() {
    if [ "$rc" -eq "$2" ]; then pass "$1"; else fail "$1 (want exit $2)"; fi
}

# Here-strings, not pipes: with pipefail, grep -q leaving early would let the
# writer die of SIGPIPE and turn a match into a failure.
check_out() {
    if grep -Eq -- "$2" <<<"$out"; then pass "$1"; else fail "$1 (stdout !~ /$2/)"; fi
}

check_no_out() {
    if grep -Eq -- "$2" <<<"$out"; then fail "$1 (stdout =~ /$2/)"; else pass "$1"; fi
}

check_err() {
    if grep -Eq -- "$2" <<<"$err"; then pass "$1"; else fail "$1 (stderr !~ /$2/)"; fi
}

# check_count NAME REGEX N: exactly N stdout lines match.
check_count() {
    local n
    n="$(grep -Ec -- "$2" <<<"$out")"
    if [ "$n" -eq "$3" ]; then pass "$1"; else fail "$1 ($n lines match /$2/, want $3)"; fi
}

# check_json NAME PYEXPR: PYEXPR (over the parsed stdout `j` and the
# variables exported below) is true.
json_true() {
    python3 -c '
import json, os, sys
j = json.loads(sys.argv[2])
b1 = os.environ["B1_IDS"].split()
b2 = os.environ["B2_IDS"].split()
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" "$2" 2>"$tmp/pyerr"
}

check_json() {
    if json_true "$2" "$out"; then
        pass "$1"
    else
        err="$err $(cat "$tmp/pyerr")"
        fail "$1 (json: $2)"
    fi
}

# Run a command until PYEXPR holds over its JSON output, up to ~10 s.
wait_json() {
    local expr="$1"
    shift
    for _ in $(seq 1 100); do
        run "$@"
        if [ "$rc" -eq 0 ] && json_true "$expr" "$out"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

bad_input() {
    local name="$1"
    shift
    run "$mqadmin" "$@"
    check_rc "bad input: $name exits 2" 2
    if [ -n "$err" ] && [ -z "$out" ]; then
        pass "bad input: $name explains on stderr only"
    else
        fail "bad input: $name explains on stderr only"
    fi
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

kill -TERM "$pid"
status=0
for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
done
wait "$pid" || status=$?
rc=$status
out=""
err="$(tail -20 "$log")"
check_rc "mqbroker exits 0 after SIGTERM" 0

echo "$passed passed, $failed failed"
if [ "$failed" -eq 0 ]; then
    rm -rf "$tmp"
    exit 0
fi
echo "kept $tmp for inspection" >&2
exit 1
