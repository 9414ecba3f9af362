#!/usr/bin/env bash
# End-to-end test of a broker group seen through mqdump: a SYNC_MASTER and
# two replicas on loopback take 100,000 messages from four liblsmq
# producers at once (lsmq-produce, each its own tags, keys and body size),
# all acknowledged SEND_OK, and a consumer group reads some of them
# (lsmq-consume: its %RETRY% topic and offsets). Once both replicas have
# applied everything the master committed (mqadmin haStatus), mqdump reads
# the three live stores:
#   - `dump` prints the same 100,000 messages, byte for byte;
#   - `stats --scan` says the same: log position, topics with their ids,
#     counted and scanned messages and bytes. The store's path and the
#     RocksDB figures of its files (approxDiskBytes, columnFamilies) are
#     left out: they describe each disk, not what it holds;
#   - `topics` and `queues` agree too.
# Then every broker must exit 0 on SIGTERM.
#
#   tests/e2e/repl_mqdump_test.sh BUILD_DIR
#
# Prints one line per check and a final "N passed, M failed"; exits 0 only
# when nothing failed.
set -uo pipefail

build="${1:?usage: repl_mqdump_test.sh BUILD_DIR}"
. "$(dirname "$0")/lib.sh"

require_bins "$mqdump" "$mqadmin" "$produce" "$consume" "$broker_bin"

PRODUCERS=4
PER_PRODUCER=25000
TOTAL=$((PRODUCERS * PER_PRODUCER))

producer_pids=()
trap 'kill_running "${producer_pids[@]}" "${replica_pids[@]}" "$pid"' EXIT

master_ha="$(free_port)"
start_broker repl-mqdump --brokerRole=SYNC_MASTER --haListenPort="$master_ha"
start_replica 1 "$master_ha"
replica1_addr="$replica_addr" replica1_pid="$replica_pid"
start_replica 2 "$master_ha"
replica2_addr="$replica_addr" replica2_pid="$replica_pid"
export NAMESRV_ADDR="$ns"
scratch="$tmp/scratch" # mqdump's secondary instances live there
mkdir -p "$scratch"

if wait_json "j['brokers'][0]['inSyncSlaveNums']==2" "$mqadmin" haStatus -b "$addr" --json; then
    pass "the master counts both replicas in sync"
else
    fail "the master counts both replicas in sync"
fi
run "$mqadmin" updateTopic -b "$addr" -t DumpT -r 4 -w 4
check_rc "updateTopic DumpT on the master" 0

# ---- 100,000 messages, every one acknowledged by a replica -------------------

# Each producer has all its sends in flight at once: hence the long timeout.
t0=$SECONDS
for i in $(seq 1 "$PRODUCERS"); do
    "$produce" -n "$ns" -t DumpT -g "dump-pg-$i" --tags "tag$i" --keys "key$i shared" \
        --async --timeout 60000 -c "$PER_PRODUCER" -s $((64 + 96 * i)) \
        >"$tmp/produce-$i.out" 2>"$tmp/produce-$i.err" &
    producer_pids+=($!)
done
status=0
for p in "${producer_pids[@]}"; do
    wait "$p" || status=1
done
producer_pids=()
echo "# $TOTAL sends in $((SECONDS - t0)) s"
rc=$status
out="$(cat "$tmp"/produce-*.out | grep -v '^SEND_OK' | sort | uniq -c | head -5)"
err="$(cat "$tmp"/produce-*.err)"
check_rc "$TOTAL sends: every producer exits 0" 0
acked="$(cat "$tmp"/produce-*.out | grep -c '^SEND_OK ')"
if [ "$acked" -eq "$TOTAL" ]; then
    pass "$TOTAL sends answered SEND_OK"
else
    fail "$TOTAL sends answered SEND_OK (got $acked)"
fi

# A consumer group: its subscription, its %RETRY% topic and offsets are
# state of the master's like the messages.
run timeout 60 "$consume" -n "$ns" -t DumpT -g dump-cg --from first --count 2000 --timeout 50
check_rc "a consumer group reads 2000 messages" 0

# ---- the three stores, through mqdump ------------------------------------------

if wait_caught_up 60 "$addr" "$replica1_addr" "$replica2_addr"; then
    pass "both replicas applied everything the master committed"
else
    fail "both replicas applied everything the master committed"
fi

# mqd NAME STORE ARGS...: `mqdump ARGS STORE` into $tmp/NAME, checked to exit 0.
mqd() {
    local name="$1" store="$2"
    shift 2
    TMPDIR="$scratch" "$mqdump" "$@" --no-progress "$store" >"$tmp/$name" 2>"$tmp/stderr"
    rc=$?
    out="$(head -c 600 "$tmp/$name")"
    err="$(cat "$tmp/stderr")"
    check_rc "mqdump $* on $name's store" 0
}

# stats_logical FILE: the stats JSON without what describes the disk
# rather than the store's content.
stats_logical() {
    python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
for k in ("store", "columnFamilies"):
    s.pop(k, None)
for t in s["topics"]:
    t.pop("approxDiskBytes", None)
print(json.dumps(s, sort_keys=True, indent=1))' "$1"
}

stores=(master replica-1 replica-2)
dirs=("$data" "$tmp/replica-1" "$tmp/replica-2")
for i in 0 1 2; do
    name="${stores[$i]}"
    mqd "$name.dump" "${dirs[$i]}" dump
    mqd "$name.stats" "${dirs[$i]}" stats --scan
    stats_logical "$tmp/$name.stats" >"$tmp/$name.stats-logical"
    mqd "$name.topics" "${dirs[$i]}" topics
    mqd "$name.queues" "${dirs[$i]}" queues DumpT
done

out="$(head -c 300 "$tmp/master.dump")"
err=""
n="$(wc -l <"$tmp/master.dump")"
if [ "$n" -eq "$TOTAL" ]; then
    pass "the master's dump holds $TOTAL messages"
else
    fail "the master's dump holds $TOTAL messages (it has $n)"
fi
run python3 -c '
import json, sys
want = {"tag%d" % i: 0 for i in range(1, 5)}
for line in open(sys.argv[1]):
    m = json.loads(line)
    want[m["tags"]] += 1
    assert m["keys"] == "key%s shared" % m["tags"][3:], m
assert all(v == 25000 for v in want.values()), want' "$tmp/master.dump"
check_rc "the dump holds each producer's 25,000 with its tags and keys" 0
run stats_logical "$tmp/master.stats"
check_json "stats --scan: $TOTAL messages scanned" \
    "j['scannedMessages'] == $TOTAL and j['messages'] == $TOTAL"
check_json "stats --scan: the consumer group's retry topic" \
    "any(t['topic'] == '%RETRY%dump-cg' for t in j['topics'])"

# same WHAT FILE: every replica's FILE is the master's, byte for byte.
same() {
    local r
    for r in replica-1 replica-2; do
        rc=0
        out="$(diff "$tmp/master.$2" "$tmp/$r.$2" | head -c 1500)" || rc=1
        err=""
        check_rc "$r: $1 identical to the master's" 0
    done
}
same "mqdump dump" dump
same "mqdump stats --scan (content)" stats-logical
same "mqdump topics" topics
same "mqdump queues DumpT" queues

stop_process "$replica1_pid" "$tmp/replica-1.log" "replica 1"
stop_process "$replica2_pid" "$tmp/replica-2.log" "replica 2"
stop_broker
finish
