#!/usr/bin/env bash
# End-to-end test of replication over a link that fails: a SYNC_MASTER and
# its replica, each in its own network namespace joined by a veth pair
# (10.200.0.1 and 10.200.0.2), under load from four synchronous liblsmq
# producers (lsmq-produce) in the master's namespace, every answer
# timestamped. Then:
#   1. the link is cut (nft drops everything between the two) for 7 s:
#      every send is answered FLUSH_SLAVE_TIMEOUT after syncFlushTimeout
#      while the master still counts the silent replica, then
#      SLAVE_NOT_AVAILABLE once it has dropped it; none SEND_OK;
#   2. the link comes back slow (tc netem delay 50ms; a kernel without
#      netem gets a 10 Mbit/s tbf link instead): the replica reconnects,
#      is in sync again, and every send is SEND_OK again (under netem each
#      one waits out the 50 ms);
#   3. the link is healed: every send SEND_OK.
# Afterwards the replica has applied all the master committed and
#   - mqdump dump prints the same messages on both stores;
#   - every message acknowledged SEND_OK is on the replica with its body,
#     and so is every one answered FLUSH_SLAVE_TIMEOUT or
#     SLAVE_NOT_AVAILABLE (stored on the master all the same);
#   - no gap and no double: each queue holds offsets 0..n-1, one message
#     per send answered as stored;
# and both brokers exit 0 on SIGTERM. The namespaces are removed however
# the test ends.
#
#   tests/e2e/repl_netfault_test.sh BUILD_DIR
#
# Needs root and ip, tc and nft (scripts/setup.sh installs iproute2 and
# nftables); without them it fails at once saying so. Prints one line per
# check and a final "N passed, M failed"; exits 0 only when nothing failed.
set -uo pipefail

build="${1:?usage: repl_netfault_test.sh BUILD_DIR}"
. "$(dirname "$0")/lib.sh"

require_bins "$mqadmin" "$mqdump" "$produce" "$broker_bin"

# missing WHAT: stop at once, as one failed check: nothing can run without it.
missing() {
    echo "repl_netfault_test: $1" >&2
    echo "FAIL - $1"
    echo "0 passed, 1 failed"
    exit 1
}
[ "$(id -u)" -eq 0 ] || missing "needs root: it makes network namespaces, veth pairs and nft rules"
for tool in ip tc nft; do
    command -v "$tool" >/dev/null 2>&1 ||
        missing "needs $tool (scripts/setup.sh installs iproute2 and nftables)"
done

SYNC_FLUSH_TIMEOUT_MS=1000
PRODUCERS=4
RATE=100 # sends per second per producer, at most
CUT_S=7  # longer than the 5 s after which both sides drop a silent peer
MASTER_IP=10.200.0.1
REPLICA_IP=10.200.0.2
# Each broker has a namespace of its own, so the usual ports are free there.
NAMESRV="$MASTER_IP:9876"
MASTER_ADDR="$MASTER_IP:10911"
REPLICA_ADDR="$REPLICA_IP:10911"
ns_m="lsmq-$$-master"
ns_r="lsmq-$$-replica"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/lsmq-repl-netfault-XXXXXX")"
master_pid=""
replica_pid=""
load_pids=()

# Whatever happens: every process in the namespaces killed, the namespaces
# (and with them the veth pair) removed.
cleanup() {
    local n p
    for n in "$ns_m" "$ns_r"; do
        for p in $(ip netns pids "$n" 2>/dev/null); do
            kill -9 "$p" 2>/dev/null
        done
    done
    kill_running "${load_pids[@]}" "$master_pid" "$replica_pid"
    ip netns del "$ns_m" 2>/dev/null
    ip netns del "$ns_r" 2>/dev/null
}
trap cleanup EXIT

in_m() { ip netns exec "$ns_m" "$@"; }
in_r() { ip netns exec "$ns_r" "$@"; }

# mark NAME: the time a phase began, in the clock the answers are stamped with.
mark() {
    echo "$1 $(now_ms)" >>"$tmp/phases"
}

# ---- the network -------------------------------------------------------------

ip netns add "$ns_m" && ip netns add "$ns_r" &&
    ip -n "$ns_m" link add ha0 type veth peer name ha0 netns "$ns_r" &&
    ip -n "$ns_m" addr add "$MASTER_IP/24" dev ha0 &&
    ip -n "$ns_r" addr add "$REPLICA_IP/24" dev ha0 &&
    ip -n "$ns_m" link set lo up && ip -n "$ns_m" link set ha0 up &&
    ip -n "$ns_r" link set lo up && ip -n "$ns_r" link set ha0 up ||
    missing "cannot make the network namespaces and their veth pair"

cut_link() {
    in_m nft -f - <<EOF
table inet lsmq_cut {
    chain in { type filter hook input priority 0; policy accept; ip saddr $REPLICA_IP drop; }
    chain out { type filter hook output priority 0; policy accept; ip daddr $REPLICA_IP drop; }
}
EOF
}

# slow_link: 50 ms more on the way to the replica (netem), or where the
# kernel has no netem, a 10 Mbit/s link; sets netem=1 or 0.
slow_link() {
    if tc -n "$ns_m" qdisc add dev ha0 root netem delay 50ms 2>/dev/null; then
        netem=1
    else
        echo "# this kernel has no netem: a 10 Mbit/s link (tbf) instead of 50 ms of delay"
        tc -n "$ns_m" qdisc add dev ha0 root tbf rate 10mbit burst 32kb latency 400ms
        netem=0
    fi
}

# ---- the brokers -------------------------------------------------------------

# ip netns exec runs the broker in place: $! is the broker.
ip netns exec "$ns_m" "$broker_bin" --embedded-namesrv --embeddedNamesrvPort=9876 \
    --listenPort=10911 --haListenPort=10912 --brokerIP1="$MASTER_IP" \
    --storePathRootDir="$tmp/master" --brokerRole=SYNC_MASTER \
    --syncFlushTimeout="$SYNC_FLUSH_TIMEOUT_MS" >"$tmp/master.log" 2>&1 &
master_pid=$!
in_m bash -c "$(declare -f wait_listening); wait_listening 10911 $MASTER_IP"
ip netns exec "$ns_r" "$broker_bin" --listenPort=10911 --haListenPort=10912 \
    --brokerIP1="$REPLICA_IP" --storePathRootDir="$tmp/replica" --namesrvAddr="$NAMESRV" \
    --brokerRole=SLAVE --brokerId=1 --haMasterAddress="$MASTER_IP:10912" \
    >"$tmp/replica.log" 2>&1 &
replica_pid=$!
in_r bash -c "$(declare -f wait_listening); wait_listening 10911 $REPLICA_IP"
export NAMESRV_ADDR="$NAMESRV"

# in_sync_within SECONDS: the master counts its replica in sync within SECONDS.
in_sync_within() {
    local deadline=$((SECONDS + $1))
    while [ "$SECONDS" -lt "$deadline" ]; do
        run in_m "$mqadmin" haStatus -b "$MASTER_ADDR" --json
        if [ "$rc" -eq 0 ] && json_true "j['brokers'][0]['inSyncSlaveNums'] == 1" <<<"$out"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

if in_sync_within 20; then
    pass "the replica follows its master across the veth pair"
else
    fail "the replica follows its master across the veth pair"
fi
run in_m "$mqadmin" updateTopic -b "$MASTER_ADDR" -t NetT -r 4 -w 4
check_rc "updateTopic NetT on the master" 0
if wait_json "len(j['queueDatas']) > 0" in_m "$mqadmin" topicRoute -t NetT --json; then
    pass "the name server routes NetT"
else
    fail "the name server routes NetT"
fi

# ---- load, and the link cut, slowed, healed -----------------------------------

for i in $(seq 1 "$PRODUCERS"); do
    (
        python3 -c "$generate" "$i" "$RATE" "$tmp/stop" |
            in_m "$produce" -n "$NAMESRV" -t NetT -g "net-pg-$i" --timeout 5000 \
                2>"$tmp/produce-$i.err" |
            python3 -c "$stamp" >"$tmp/produce-$i.out"
        exit "${PIPESTATUS[1]}"
    ) &
    load_pids+=($!)
done

sleep 3
mark cut
cut_link || missing "nft cannot drop the link's packets"
sleep "$CUT_S"
mark slow
in_m nft delete table inet lsmq_cut
slow_link || missing "tc cannot slow the link"
if in_sync_within 20; then
    pass "over the slow link the replica is in sync again"
else
    fail "over the slow link the replica is in sync again"
fi
mark back
sleep 4
mark heal
tc -n "$ns_m" qdisc del dev ha0 root
sleep 3
touch "$tmp/stop"
status=0
for p in "${load_pids[@]}"; do
    wait "$p" || status=1
done
load_pids=()
mark end
rc=$status
out="$(grep -h FAILED "$tmp"/produce-*.out | head -5)"
err="$(cat "$tmp"/produce-*.err)"
check_rc "every producer exits 0: no send failed outright" 0

# ---- afterwards: the replica holds exactly what the master stored --------------

# The replica has applied at least what the master had committed once the load stopped.
run in_m "$mqadmin" haStatus -b "$MASTER_ADDR" --json
master_seq="$(python3 -c '
import json, sys
print(json.load(sys.stdin)["brokers"][0]["masterSequence"])' <<<"$out" 2>/dev/null || echo 0)"
caught_up=0
for _ in $(seq 1 300); do
    run in_r "$mqadmin" haStatus -b "$REPLICA_ADDR" --json
    if [ "$rc" -eq 0 ] && [ "$master_seq" -gt 0 ] &&
        json_true "(j['brokers'][0]['connected'] and
                    j['brokers'][0]['appliedSequence'] >= $master_seq)" <<<"$out"; then
        caught_up=1
        break
    fi
    sleep 0.1
done
if [ "$caught_up" -eq 1 ]; then
    pass "the replica catches up once the link is healed"
else
    fail "the replica catches up once the link is healed (master sequence $master_seq)"
fi

mkdir -p "$tmp/scratch"
for side in master replica; do
    TMPDIR="$tmp/scratch" run "$mqdump" dump -t NetT --no-progress "$tmp/$side"
    cp "$tmp/out" "$tmp/$side.dump"
    check_rc "mqdump dump of the $side's store" 0
done
rc=0
out="$(diff "$tmp/master.dump" "$tmp/replica.dump" | head -c 1500)" || rc=1
err=""
check_rc "mqdump dump: the replica's messages are the master's" 0

# The answers, phase by phase, and the replica's store against them: one
# "ok NAME" or "fail NAME: WHY" line per check.
judge='
import json, sys
tmp, producers, timeout_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
netem = sys.argv[4] == "1"
phase = {}
for line in open(tmp + "/phases"):
    name, t = line.split()
    phase[name] = int(t)
STORED = ("SEND_OK", "FLUSH_SLAVE_TIMEOUT", "SLAVE_NOT_AVAILABLE")
# answers[p] = [(time, status, gap since the previous answer, queue, offset)], by seq
answers = {}
for p in range(1, producers + 1):
    rows, prev = [], None
    for line in open("%s/produce-%d.out" % (tmp, p)):
        f = line.split()
        t, status = int(f[0]), f[1]
        q = o = None
        if status in STORED:
            kv = dict(x.split("=", 1) for x in f[2:])
            q, o = int(kv["queue"].rsplit(":", 1)[1]), int(kv["offset"])
        rows.append((t, status, t - prev if prev else None, q, o))
        prev = t
    answers[p] = rows

def between(lo, hi):
    return [a for rows in answers.values() for a in rows if lo < a[0] < hi]

def check(ok, name, why=""):
    print(("ok %s" % name) if ok else ("fail %s: %s" % (name, why)))

def all_ok(rows, name, least):
    bad = sorted(set(a[1] for a in rows if a[1] != "SEND_OK"))
    check(not bad and len(rows) >= least, "%s: all %d answers SEND_OK" % (name, len(rows)),
          "answered %s; want at least %d" % (bad, least))

all_ok(between(0, phase["cut"]), "before the cut", 100)
cut = between(phase["cut"] + 500, phase["slow"])
wrong = [a for a in cut if a[1] not in ("FLUSH_SLAVE_TIMEOUT", "SLAVE_NOT_AVAILABLE")]
check(not wrong and cut, "while cut: every answer FLUSH_SLAVE_TIMEOUT or SLAVE_NOT_AVAILABLE",
      "%d of %d answers otherwise, e.g. %s" % (len(wrong), len(cut), wrong[:3]))
flush = [a for a in cut if a[1] == "FLUSH_SLAVE_TIMEOUT"]
quick = [a for a in flush if a[2] is not None and a[2] < 0.9 * timeout_ms]
check(flush and not quick,
      "while cut: FLUSH_SLAVE_TIMEOUT after syncFlushTimeout (%d answers)" % len(flush),
      "%d answers, %d of them sooner than %d ms" % (len(flush), len(quick), timeout_ms))
na = [a for a in cut if a[1] == "SLAVE_NOT_AVAILABLE"]
check(na, "while cut: SLAVE_NOT_AVAILABLE once the master dropped the silent replica (%d)"
      % len(na), "none")
slow = between(phase["back"] + 1500, phase["heal"])
all_ok(slow, "slow link, replica in sync", 10)
if netem:
    gaps = [a[2] for a in slow if a[2] is not None]
    check(gaps and min(gaps) >= 45, "slow link: each send waited out the 50 ms delay",
          "shortest gap between answers %s ms" % (min(gaps) if gaps else None))
all_ok(between(phase["heal"] + 500, phase["end"]), "healed", 50)

# The replica store, (queue, offset) -> "p<producer> s<seq>".
held, doubles = {}, 0
for line in open(tmp + "/replica.dump"):
    m = json.loads(line)
    key = (m["queueId"], m["queueOffset"])
    doubles += key in held
    held[key] = " ".join(m["body"].split(" ", 2)[:2])
acked = lost = unconfirmed = unconfirmed_lost = 0
for p, rows in answers.items():
    for seq, a in enumerate(rows):
        if a[1] not in STORED:
            continue
        on_replica = held.get((a[3], a[4])) == "p%d s%d" % (p, seq)
        if a[1] == "SEND_OK":
            acked += 1
            lost += not on_replica
        else:
            unconfirmed += 1
            unconfirmed_lost += not on_replica
check(acked and not lost, "every message acknowledged SEND_OK is on the replica (%d)" % acked,
      "%d of %d missing" % (lost, acked))
check(unconfirmed and not unconfirmed_lost,
      "every message stored without confirmation is on the replica too (%d)" % unconfirmed,
      "%d of %d missing" % (unconfirmed_lost, unconfirmed))
by_queue = {}
for q, o in held:
    by_queue.setdefault(q, []).append(o)
gaps = {q: len(v) for q, v in by_queue.items() if sorted(v) != list(range(len(v)))}
bodies = set(held.values())
check(not doubles and not gaps and len(held) == acked + unconfirmed and len(bodies) == len(held),
      "no gap and no double: %d messages, one per stored answer" % len(held),
      "%d doubles, queues with gaps %s, %d bodies for %d answers" %
      (doubles, gaps, len(bodies), acked + unconfirmed))
'
python3 -c "$judge" "$tmp" "$PRODUCERS" "$SYNC_FLUSH_TIMEOUT_MS" "$netem" \
    >"$tmp/judged" 2>"$tmp/pyerr"
rc=$?
out=""
err="$(cat "$tmp/pyerr")"
[ "$rc" -eq 0 ] || fail "the answers and the replica's store could be judged"
while IFS= read -r line; do
    case "$line" in
    "ok "*) pass "${line#ok }" ;;
    *)
        rc=1 out="${line#fail }" err=""
        fail "${line#fail }"
        ;;
    esac
done <"$tmp/judged"

stop_process "$replica_pid" "$tmp/replica.log" "the replica"
replica_pid=""
stop_process "$master_pid" "$tmp/master.log" "the master"
master_pid=""
finish
