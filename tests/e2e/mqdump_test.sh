#!/usr/bin/env bash
# End-to-end test of tools/mqdump against the store of a real mqbroker:
#  1. starts the broker with an embedded name server on free loopback ports
#     and a temporary store, sends messages with tags, keys and text or
#     binary bodies through lsmq-produce, consumes them with lsmq-consume
#     and checks that `mqdump dump` shows exactly what was consumed; then
#     each dump filter, topics, queues, stats and get (by offset message id
#     and by unique key); timers and the pending counts of stats on a store
#     holding delayed messages (made by lsmq-engine-demo --delayMs);
#  2. runs mqdump while a producer keeps the broker busy (every run
#     succeeds, the producer sees no error), stops the broker, and checks
#     that running every command leaves every file of the store unchanged
#     and its scratch directory gone;
#  3. checks the errors: a missing directory, an empty one, garbage in db/,
#     a RocksDB database that is not a broker's, a corrupt record (skipped
#     and reported), and bad usage (exit 2).
#
#   tests/e2e/mqdump_test.sh BUILD_DIR
#
# Prints one line per check and a final "N passed, M failed"; exits 0 only
# when nothing failed.
set -uo pipefail

build="${1:?usage: mqdump_test.sh BUILD_DIR}"
. "$(dirname "$0")/lib.sh"

# JSON Lines can be long: a failure shows a fixed number of bytes instead.
fail_head=(-c 1500)

require_bins "$mqdump" "$mqadmin" "$produce" "$consume" "$broker_bin"

load_pid=""
trap 'kill_running "$load_pid" "$pid"' EXIT
start_broker mqdump
scratch="$tmp/scratch" # mqdump's TMPDIR: its secondary instance lives there
mkdir -p "$scratch"

# ---- helpers ---------------------------------------------------------------

# mqdump with its scratch space under $scratch.
mqd() {
    TMPDIR="$scratch" run "$mqdump" "$@"
}

# Python helpers shared by the checks: JSON Lines files and message bodies.
PRELUDE='
import base64, json, sys, time
def load(path):
    with open(path, "rb") as f:
        return [json.loads(l) for l in f.read().decode("utf-8").splitlines() if l.strip()]
def body(m):
    if m["bodyEncoding"] == "base64":
        return base64.b64decode(m["body"])
    assert m["bodyEncoding"] == "utf8", m["bodyEncoding"]
    return m["body"].encode("utf-8")
def pos(ms):
    return sorted((m["queueId"], m["queueOffset"]) for m in ms)
'

# pycheck NAME CODE [ARGS...]: CODE (after PRELUDE, with sys.argv[1:] = ARGS)
# exits 0. The last command's stdout is in $tmp/out.
pycheck() {
    local name="$1" code="$2"
    shift 2
    if python3 -c "$PRELUDE$code" "$@" 2>"$tmp/pyerr"; then
        pass "$name"
    else
        err="$err $(cat "$tmp/pyerr")"
        fail "$name"
    fi
}

# filter_check NAME PRED ARGS...: `mqdump dump ARGS` prints exactly the
# messages of the full dump ($tmp/all.jsonl) for which the Python
# expression PRED (over m) holds, and at least one.
filter_check() {
    local name="$1" pred="$2"
    shift 2
    mqd dump "$@" "$data"
    if [ "$rc" -ne 0 ]; then
        fail "$name (exit $rc)"
        return
    fi
    pycheck "$name" '
full = load(sys.argv[1]); got = load(sys.argv[2])
want = [m for m in full if (lambda m: '"$pred"')(m)]
assert want, "the filter selects nothing in the full dump: a useless check"
assert pos(got) == pos(want), (pos(got), pos(want))
assert got == sorted(got, key=lambda m: (m["queueId"], m["queueOffset"])), "not in key order"
' "$tmp/all.jsonl" "$tmp/out"
}

# Every file of the store with its hash, and every path.
snapshot() {
    (cd "$data" && find . -type f -print0 | sort -z | xargs -0 sha256sum && find . | sort)
}

# ---- 1. what was sent and consumed is what mqdump shows --------------------

topic=MqdT
for _ in $(seq 1 100); do
    run "$mqadmin" updateTopic -n "$ns" -c DefaultCluster -t "$topic" -r 4 -w 4
    [ "$rc" -eq 0 ] && break
    sleep 0.1
done
check_rc "updateTopic $topic" 0

run "$produce" -n "$ns" -t "$topic" --tags TagA --keys "ka kshared" -c 20 -s 64
check_rc "produce 20 TagA messages" 0
cp "$tmp/out" "$tmp/sent"
for i in $(seq 1 10); do
    printf 'line %d é ✓ tab\there back\\slash "quoted"\n' "$i"
done >"$tmp/lines"
run "$produce" -n "$ns" -t "$topic" --tags TagB --keys "kb kshared" <"$tmp/lines"
check_rc "produce 10 TagB messages from text lines" 0
cat "$tmp/out" >>"$tmp/sent"
printf '\xff\xfe\x01binary\x80\n' >"$tmp/binary"
run "$produce" -n "$ns" -t "$topic" --tags TagC <"$tmp/binary"
check_rc "produce one binary TagC message" 0
cat "$tmp/out" >>"$tmp/sent"
total=31

run "$consume" -n "$ns" -t "$topic" -g mqdump-check --from first --count "$total" --timeout 60
check_rc "consume the $total messages" 0
cp "$tmp/out" "$tmp/consumed"

mqd dump --topic "$topic" "$data"
check_rc "dump --topic" 0
cp "$tmp/out" "$tmp/all.jsonl"
pycheck "dump shows exactly what was consumed (ids, bodies, tags, keys)" '
def unescape(b):
    out, i = bytearray(), 0
    while i < len(b):
        if b[i:i+1] == b"\\" and i + 1 < len(b):
            out += {b"n": b"\n", b"t": b"\t", b"\\": b"\\"}[b[i+1:i+2]]
            i += 2
        else:
            out += b[i:i+1]; i += 1
    return bytes(out)
consumed = {}
for line in open(sys.argv[2], "rb").read().split(b"\n"):
    if not line:
        continue
    t, q, off, mid, tags, keys, rt, b = line.split(b"\t", 7)
    qid = int(q.rsplit(b":", 1)[1])
    consumed[(qid, int(off))] = (mid.decode(), tags.decode(), keys.decode(), unescape(b))
dumped = {}
for m in load(sys.argv[1]):
    assert m["topic"] == "MqdT"
    dumped[(m["queueId"], m["queueOffset"])] = (m["uniqKey"], m["tags"] or "-", m["keys"] or "-", body(m))
assert len(dumped) == int(sys.argv[3]), len(dumped)
assert consumed == dumped, [(k, consumed.get(k), dumped.get(k)) for k in set(consumed) | set(dumped) if consumed.get(k) != dumped.get(k)][:5]
' "$tmp/all.jsonl" "$tmp/consumed" "$total"

pycheck "dump shows the ids lsmq-produce was given (msgId, offsetMsgId, queue, offset)" '
byid = {m["uniqKey"]: m for m in load(sys.argv[1])}
n = 0
for line in open(sys.argv[2]):
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    m = byid[f["msgId"]]
    assert m["msgId"] == f["offsetMsgId"], (m["msgId"], f)
    assert m["queueId"] == int(f["queue"].rsplit(":", 1)[1]) and m["queueOffset"] == int(f["offset"])
    n += 1
assert n == int(sys.argv[3]), n
' "$tmp/all.jsonl" "$tmp/sent" "$total"

pycheck "dump fields: properties, hosts, times, base64 for the binary body" '
ms = load(sys.argv[1])
for m in ms:
    p = m["properties"]
    assert p["TAGS"] == m["tags"] and p["UNIQ_KEY"] == m["uniqKey"]
    assert m["storeHost"].startswith("127.0.0.1:") and ":" in m["bornHost"]
    assert m["storeTimestamp"] >= m["bornTimestamp"] - 60000 and m["reconsumeTimes"] == 0
    assert len(m["msgId"]) == 32 and m["commitLogOffset"] == int(m["msgId"][16:], 16)
    assert m["bodyEncoding"] == ("base64" if m["tags"] == "TagC" else "utf8")
bin = [m for m in ms if m["tags"] == "TagC"][0]
assert body(bin) == open(sys.argv[2], "rb").read().rstrip(b"\n")
' "$tmp/all.jsonl" "$tmp/binary"

filter_check "dump --queue" 'm["queueId"] == 1' --topic "$topic" --queue 1
filter_check "dump --queue without --topic" 'm["queueId"] == 2' --queue 2 --tag 'TagA || TagB || TagC'
filter_check "dump --from-offset --to-offset (to exclusive)" '2 <= m["queueOffset"] < 5' \
    --topic "$topic" --from-offset 2 --to-offset 5
filter_check "dump --queue --from-offset" 'm["queueId"] == 3 and m["queueOffset"] >= 4' \
    -t "$topic" -q 3 --from-offset 4
filter_check "dump --tag" 'm["tags"] == "TagB"' --topic "$topic" --tag TagB
filter_check "dump --tag 'A || C'" 'm["tags"] in ("TagA", "TagC")' --topic "$topic" --tag 'TagA || TagC'
filter_check "dump --key (a word of KEYS)" '"kb" in (m["keys"] or "").split()' --topic "$topic" --key kb
filter_check "dump --key shared by two runs" '"kshared" in (m["keys"] or "").split()' \
    --topic "$topic" -k kshared
filter_check "dump --prop" 'm["properties"].get("KEYS") == "ka kshared"' \
    --topic "$topic" --prop "KEYS=ka kshared"
filter_check "dump --prop twice (both must hold)" 'm["tags"] == "TagB" and m["keys"] == "kb kshared"' \
    --topic "$topic" --prop TAGS=TagB --prop "KEYS=kb kshared"

# A store-time window from the middle of the dump, in ms and in RocketMQ's format.
read -r begin_ms end_ms begin_txt end_txt < <(python3 -c "$PRELUDE"'
ts = sorted(m["storeTimestamp"] for m in load(sys.argv[1]))
b, e = ts[len(ts) // 4], ts[3 * len(ts) // 4]
fmt = lambda ms: time.strftime("%Y-%m-%d#%H:%M:%S", time.localtime(ms // 1000)) + ":%03d" % (ms % 1000)
print(b, e, fmt(b), fmt(e))' "$tmp/all.jsonl")
filter_check "dump --begin --end in ms (inclusive)" "$begin_ms <= m['storeTimestamp'] <= $end_ms" \
    --topic "$topic" --begin "$begin_ms" --end "$end_ms"
filter_check "dump -b -e as yyyy-MM-dd#HH:mm:ss:SSS" "$begin_ms <= m['storeTimestamp'] <= $end_ms" \
    --topic "$topic" -b "$begin_txt" -e "$end_txt"
filter_check "dump --begin alone" "m['storeTimestamp'] >= $end_ms" --topic "$topic" --begin "$end_ms"

mqd dump --topic "$topic" --key no-such-key "$data"
if [ "$rc" -eq 0 ] && [ -z "$out" ]; then pass "dump with a filter nothing passes prints nothing"; else fail "dump with a filter nothing passes prints nothing"; fi

mqd dump --topic "$topic" --tag TagB --format raw "$data"
check_rc "dump --format raw" 0
# Raw output is in queue order, not send order.
if [ "$(sort "$tmp/out")" = "$(sort "$tmp/lines")" ]; then
    pass "raw bodies are the bodies sent, newline after each"
else
    fail "raw bodies are the bodies sent, newline after each"
fi

mqd dump --topic "$topic" --no-progress "$data"
if [ -z "$err" ]; then pass "no progress bar when stderr is not a terminal"; else fail "no progress bar when stderr is not a terminal"; fi
mqd dump --topic "$topic" --progress "$data"
check_err "--progress draws one on stderr" "$total/$total messages"
cmp -s "$tmp/out" "$tmp/all.jsonl" && pass "the progress bar leaves stdout alone" || fail "the progress bar leaves stdout alone"

mqd topics "$data"
check_rc "topics" 0
pycheck "topics lists $topic with its queues and message count" '
t = [x for x in load(sys.argv[1]) if x["topic"] == "MqdT"]
assert len(t) == 1, t
t = t[0]
assert t["readQueueNums"] == 4 and t["writeQueueNums"] == 4 and t["perm"] == 6, t
assert t["messages"] == int(sys.argv[2]) and t["id"] > 0, t
' "$tmp/out" "$total"

mqd queues "$topic" "$data"
check_rc "queues" 0
pycheck "queues: offsets and store times agree with the dump" '
full = load(sys.argv[2])
qs = load(sys.argv[1])
assert [q["queueId"] for q in qs] == [0, 1, 2, 3], qs
for q in qs:
    mine = [m for m in full if m["queueId"] == q["queueId"]]
    assert q["minOffset"] == 0 and q["maxOffset"] == len(mine) == q["messages"], (q, len(mine))
    if mine:
        assert q["earliestStoreTime"] == min(m["storeTimestamp"] for m in mine), q
        assert q["latestStoreTime"] == max(m["storeTimestamp"] for m in mine), q
    else:
        assert q["earliestStoreTime"] is None and q["latestStoreTime"] is None, q
' "$tmp/out" "$tmp/all.jsonl"

mqd queues NoSuchTopic "$data"
check_rc "queues of an unknown topic exits 1" 1
check_err "queues of an unknown topic says so" "no topic 'NoSuchTopic'"

mqd stats "$data"
check_rc "stats" 0
pycheck "stats: per topic and total messages, every column family" '
s = load(sys.argv[1])[0]
t = [x for x in s["topics"] if x["topic"] == "MqdT"][0]
assert t["messages"] == int(sys.argv[2]), t
assert s["messages"] == sum(x["messages"] for x in s["topics"]) >= int(sys.argv[2])
assert s["nextLogPosition"] > 0 and s["formatVersion"] >= 1
cfs = s["columnFamilies"]
# A store made by this build: the engine families and the index families.
assert sorted(cfs) == sorted(["msg", "topic", "group", "offset", "meta", "timer", "idx_id", "idx_key", "idx_time"]), cfs
assert s["pendingMessages"] == 0 and t["pendingMessages"] == 0, s
for name in ("rocksdb.estimate-num-keys", "rocksdb.total-sst-files-size", "rocksdb.size-all-mem-tables"):
    assert name in cfs["msg"], cfs["msg"]
assert cfs["msg"]["rocksdb.estimate-num-keys"] >= int(sys.argv[2])
' "$tmp/out" "$total"

mqd stats --scan "$data"
check_rc "stats --scan" 0
pycheck "stats --scan counts every message and its bytes" '
s = load(sys.argv[1])[0]
t = [x for x in s["topics"] if x["topic"] == "MqdT"][0]
assert t["scannedMessages"] == t["messages"] == int(sys.argv[2]), t
assert t["bytes"] > 91 * int(sys.argv[2]) and s["bytes"] >= t["bytes"], t
' "$tmp/out" "$total"

# get: by the offset message id and by the unique key of a few messages.
read -r id1 uniq1 id2 uniq2 < <(python3 -c "$PRELUDE"'
ms = load(sys.argv[1])
print(ms[0]["msgId"], ms[0]["uniqKey"], ms[-1]["msgId"], ms[-1]["uniqKey"])' "$tmp/all.jsonl")
# "field value what": get by an offset message id or a unique key.
for lookup in "msgId $id1 offset-message-id" "uniqKey $uniq1 unique-key" \
    "msgId $id2 offset-message-id" "uniqKey $uniq2 unique-key"; do
    set -- $lookup
    mqd get "$2" "$data"
    check_rc "get by $3 $2" 0
    pycheck "get $2 prints that message as dump does" '
got = load(sys.argv[1])
want = [m for m in load(sys.argv[2]) if m[sys.argv[3]] == sys.argv[4]]
assert len(got) == 1 and got == want, (got, want)
' "$tmp/out" "$tmp/all.jsonl" "$1" "$2"
done
mqd get "$(tr 'A-F' 'a-f' <<<"$uniq1")" "$data"
check_rc "get by a unique key in lower case" 0
mqd get 7F000001000000000000000000FFFFFF "$data"
check_rc "get of an unknown id exits 1" 1
check_err "get of an unknown id says so" "no message with"

# timers: a store with delayed messages, 3 due in an hour and 2 in two hours.
demo="$build/tools/lsmq-engine-demo"
delayed="$tmp/delayed"
run "$demo" --storePathRootDir="$delayed" --count=3 --delayMs=3600000
check_rc "a store with delayed messages" 0
run "$demo" --storePathRootDir="$delayed" --count=2 --delayMs=7200000
check_rc "more delayed messages" 0
run "$demo" --storePathRootDir="$delayed" --count=4
check_rc "and plain ones" 0
mqd timers "$delayed"
check_rc "timers" 0
pycheck "timers lists every pending message in due order" '
ms = load(sys.argv[1])
assert len(ms) == 5, ms
assert [m["deliverMs"] for m in ms] == sorted(m["deliverMs"] for m in ms), ms
now = int(time.time() * 1000)
for m in ms:
    assert m["topic"] == "TopicTest" and m["topicId"] >= 1 and 0 <= m["queueId"] < 4, m
    assert len(m["msgId"]) == 32 and m["keys"].startswith("key-") and m["size"] > m["bodySize"], m
    assert m["storeTimestamp"] <= now < m["deliverMs"], m
# Due MS after the send (stored a moment after the tool read the clock).
delays = [m["deliverMs"] - m["storeTimestamp"] for m in ms]
want = [3600000] * 3 + [7200000] * 2
assert all(abs(d - w) < 60000 for d, w in zip(delays, want)), delays
' "$tmp/out"
cp "$tmp/out" "$tmp/timers.jsonl"
cut_ms="$(python3 -c "$PRELUDE"'
ms = load(sys.argv[1])
print(ms[3]["deliverMs"])' "$tmp/timers.jsonl")"
mqd timers --topic TopicTest --due-before "$cut_ms" "$delayed"
check_rc "timers --topic --due-before" 0
pycheck "timers --due-before lists those due before it" '
assert load(sys.argv[1]) == load(sys.argv[2])[:3]
' "$tmp/out" "$tmp/timers.jsonl"
mqd timers --topic NoSuchTopic "$delayed"
check_rc "timers of an unknown topic exits 1" 1
mqd stats "$delayed"
check_rc "stats of a store with delayed messages" 0
pycheck "stats counts pending messages apart, per topic and in total" '
s = load(sys.argv[1])[0]
t = [x for x in s["topics"] if x["topic"] == "TopicTest"][0]
assert t["messages"] == 4 and t["pendingMessages"] == 5 and s["pendingMessages"] == 5, s
' "$tmp/out"
pending_id="$(python3 -c "$PRELUDE"'
print(load(sys.argv[1])[0]["msgId"])' "$tmp/timers.jsonl")"
mqd get "$pending_id" "$delayed"
check_rc "get of a pending message by its offset message id" 0
check_out "get shows the pending message as it waits" '"queueOffset":0,"msgId":"'"$pending_id"'"'

# ---- 2. under load, then read-only -----------------------------------------

load_topic=MqdLoad
load_count=30000
run "$mqadmin" updateTopic -n "$ns" -c DefaultCluster -t "$load_topic" -r 8 -w 8
check_rc "updateTopic $load_topic" 0
"$produce" -n "$ns" -t "$load_topic" -c "$load_count" -s 256 --timeout 10000 >"$tmp/load.out" 2>&1 &
load_pid=$!
runs=0
runs_failed=0
runs_under_load=0
while kill -0 "$load_pid" 2>/dev/null || [ "$runs" -lt 3 ]; do
    kill -0 "$load_pid" 2>/dev/null && runs_under_load=$((runs_under_load + 1))
    for cmd in "dump --topic $load_topic --queue 0" "topics" "stats" "queues $load_topic"; do
        # shellcheck disable=SC2086
        mqd $cmd "$data"
        if [ "$rc" -ne 0 ] || ! python3 -c "$PRELUDE"'load(sys.argv[1])' "$tmp/out" 2>/dev/null; then
            runs_failed=$((runs_failed + 1))
            fail "mqdump $cmd under load"
        fi
    done
    runs=$((runs + 1))
done
wait "$load_pid"
rc=$?
load_pid=""
out="$(grep -v '^SEND_OK' "$tmp/load.out" | head -5)"
check_rc "the producer under mqdump succeeds" 0
if [ "$(grep -c '^SEND_OK' "$tmp/load.out")" -eq "$load_count" ]; then
    pass "the producer got $load_count SEND_OK"
else
    fail "the producer got $load_count SEND_OK"
fi
if [ "$runs_failed" -eq 0 ]; then pass "$runs rounds of mqdump under load succeed"; else fail "$runs rounds of mqdump under load succeed"; fi
if [ "$runs_under_load" -gt 0 ]; then
    pass "$runs_under_load rounds started while the producer was sending"
else
    fail "a round started while the producer was sending"
fi

mqd dump --topic "$load_topic" --format raw "$data"
check_rc "dump of the loaded topic while the broker runs" 0
n="$(wc -l <"$tmp/out")"
if [ "$n" -eq "$load_count" ]; then pass "a fresh mqdump sees all $load_count acknowledged messages"; else fail "a fresh mqdump sees all $load_count acknowledged messages (saw $n)"; fi
mqd dump --topic "$topic" "$data"
cp "$tmp/out" "$tmp/running.jsonl"

stop_broker

snapshot >"$tmp/before"
mqd dump --topic "$topic" "$data"
check_rc "dump with the broker stopped" 0
cmp -s "$tmp/out" "$tmp/running.jsonl" && pass "same dump with the broker stopped as running" ||
    fail "same dump with the broker stopped as running"
read_only_failed=0
for cmd in "topics" "queues $topic" "queues $load_topic" "dump" "dump --format raw" \
    "dump -t $topic -q 1 --from-offset 1 --to-offset 3 -b 0 -e 99999999999999" \
    "dump -t $topic --tag TagA -k ka -p TAGS=TagA" "get $id1" "get $uniq1" "stats" "stats --scan"; do
    # shellcheck disable=SC2086
    mqd $cmd "$data"
    if [ "$rc" -ne 0 ]; then
        read_only_failed=1
        fail "mqdump $cmd on the stopped store"
    fi
done
[ "$read_only_failed" -eq 0 ] && pass "every command runs on the stopped store"
snapshot >"$tmp/after"
if cmp -s "$tmp/before" "$tmp/after"; then
    pass "no file of the store changed, none appeared or went"
else
    out="$(diff "$tmp/before" "$tmp/after" | head -20)"
    fail "no file of the store changed, none appeared or went"
fi
if [ -z "$(ls -A "$scratch")" ]; then pass "mqdump removes its scratch directories"; else
    out="$(ls -A "$scratch")"
    fail "mqdump removes its scratch directories"
fi

# ---- 3. errors ---------------------------------------------------------------

mqd topics "$tmp/no-such-dir"
check_rc "a missing directory exits 1" 1
check_err "a missing directory is named" "no-such-dir: No such file or directory"
mkdir -p "$tmp/empty"
mqd dump "$tmp/empty"
check_rc "an empty directory exits 1" 1
check_err "an empty directory is not a broker store" "not a broker store \(no db/ directory\)"
mkdir -p "$tmp/garbage/db" "$tmp/other"
head -c 4096 /dev/urandom >"$tmp/garbage/db/CURRENT"
head -c 65536 /dev/urandom >"$tmp/garbage/db/MANIFEST-000001"
mqd stats "$tmp/garbage"
check_rc "garbage in db/ exits 1" 1
check_err "garbage in db/ is called corrupt" "corrupt store"
if [ "$(wc -l <<<"$err")" -eq 1 ]; then pass "the error is one line"; else fail "the error is one line"; fi
mkdir -p "$tmp/nodb/db"
mqd topics "$tmp/nodb"
check_rc "an empty db/ exits 1" 1
check_err "an empty db/ is not a broker store" "not a broker store"

if command -v ldb >/dev/null; then
    # A RocksDB database of someone else's: no meta family.
    ldb --db="$tmp/other/db" --create_if_missing put a b >/dev/null 2>&1
    mqd topics "$tmp/other"
    check_rc "a foreign RocksDB database exits 1" 1
    check_err "a foreign RocksDB database is not a broker store" "not a broker store"

    # The store without its format version record.
    cp -r "$data" "$tmp/noversion"
    ldb --db="$tmp/noversion/db" --column_family=meta --hex delete 0x56 >/dev/null 2>&1
    mqd topics "$tmp/noversion"
    check_rc "a store without its version record exits 1" 1
    check_err "a store without its version record is named so" "no format version record"

    # One record overwritten with garbage: reported, skipped, the rest printed.
    cp -r "$data" "$tmp/corrupt"
    key="$(python3 -c "$PRELUDE"'
ms = load(sys.argv[1])
t = [x for x in load(sys.argv[2]) if x["topic"] == "MqdT"][0]
print("0x%08X%08X%016X" % (t["id"], ms[0]["queueId"], ms[0]["queueOffset"]))' \
        "$tmp/all.jsonl" <(TMPDIR="$scratch" "$mqdump" topics "$data"))"
    ldb --db="$tmp/corrupt/db" --column_family=msg --hex put "$key" 0xDEADBEEF >/dev/null 2>&1
    mqd dump --topic "$topic" "$tmp/corrupt"
    check_rc "a corrupt record does not stop dump" 0
    check_err "the corrupt record is reported" "corrupt record at topic MqdT .* queue [0-9]+ offset [0-9]+"
    n="$(wc -l <"$tmp/out")"
    if [ "$n" -eq $((total - 1)) ]; then pass "every other record is printed"; else fail "every other record is printed ($n)"; fi
else
    echo "skip - ldb (rocksdb-tools) not installed: foreign database and corrupt record checks"
fi

# Bad usage: exit 2, usage on stderr, nothing on stdout.
bad_usage() {
    local name="$1"
    shift
    mqd "$@"
    check_rc "bad usage: $name exits 2" 2
    if [ -z "$out" ] && grep -q "^usage: mqdump" <<<"$err"; then
        pass "bad usage: $name prints the usage on stderr only"
    else
        fail "bad usage: $name prints the usage on stderr only"
    fi
}
bad_usage "no arguments"
bad_usage "unknown command" frobnicate "$data"
bad_usage "unknown option" dump --bogus "$data"
bad_usage "missing store directory" topics
bad_usage "get without an id" get "$data"
bad_usage "a filter on topics" topics --topic X "$data"
bad_usage "bad offset" dump --from-offset ten "$data"
bad_usage "bad time" dump --begin yesterday "$data"
bad_usage "bad format" dump --format xml "$data"
bad_usage "a dump filter on timers" timers --tag A "$data"
bad_usage "--due-before on dump" dump --due-before 0 "$data"
bad_usage "--prop without =" dump --prop TAGS "$data"
mqd --help
check_rc "--help exits 0" 0
if grep -q "^usage: mqdump" <<<"$out"; then pass "--help prints the usage on stdout"; else fail "--help prints the usage on stdout"; fi

finish
