# Shared pieces of the end-to-end shell tests (mqadmin_test.sh,
# mqadmin_query_test.sh, mqdump_test.sh, the replication ones), sourced by
# each after `set -uo pipefail` and setting $build to the CMake build
# directory:
#
#   . "$(dirname "$0")/lib.sh"
#
# Every test starts one mqbroker with an embedded name server on free
# loopback ports and a temporary store (and maybe replicas of it), runs
# commands against it, prints one
# "ok - NAME" or "FAIL - NAME" line per check and a final
# "N passed, M failed", and exits 0 only when nothing failed.
#
# State the helpers share with the test: $passed and $failed count the
# checks; run leaves the last command's stdout in $out (and $tmp/out), its
# stderr in $err and its status in $rc, which the check_* helpers read.

# The binaries under test; each test passes the ones it uses to require_bins.
mqadmin="$build/tools/mqadmin"
mqdump="$build/tools/mqdump"
produce="$build/tools/lsmq-produce"
consume="$build/tools/lsmq-consume"
broker_bin="$build/server/mqbroker"

passed=0
failed=0
out=""
err=""
rc=0
pid="" # the broker, once start_broker has run

# How much of stdout and stderr a failure shows, as options to head; a test
# with long output lines may show bytes instead.
fail_head=(-n 20)

# require_bins BIN...: stop at once, as one failed check, if a binary is not
# built: every later check would fail for the same reason.
require_bins() {
    local bin
    for bin in "$@"; do
        if [ ! -x "$bin" ]; then
            echo "missing $bin: build the tree first" >&2
            echo "0 passed, 1 failed"
            exit 1
        fi
    done
}

# A loopback TCP port nobody listens on now, so tests can run in parallel.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# The time in milliseconds since the epoch, the unit of the broker's timestamps.
now_ms() {
    python3 -c 'import time; print(int(time.time()*1000))'
}

# kill_running PID...: SIGKILL and reap each PID still running (empty ones
# are skipped). For the EXIT trap, so that a test that fails or is
# interrupted halfway leaves no broker or client behind.
kill_running() {
    local p
    for p in "$@"; do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill -9 "$p" 2>/dev/null
            wait "$p" 2>/dev/null
        fi
    done
}

# start_broker NAME [OPTION...]: make a temporary directory $tmp
# (lsmq-NAME-XXXXXX), start mqbroker with its embedded name server on free
# loopback ports, its store in $data and the extra --key=value options, and
# wait until it listens. Sets tmp, data, log, port, ns_port, addr (the
# broker) and ns (the name server), and pid.
start_broker() {
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/lsmq-$1-XXXXXX")"
    shift
    data="$tmp/data"
    log="$tmp/broker.log"
    port="$(free_port)"
    ns_port="$(free_port)"
    addr="127.0.0.1:$port"
    ns="127.0.0.1:$ns_port"
    "$broker_bin" --embedded-namesrv --embeddedNamesrvPort="$ns_port" --listenPort="$port" \
        --haListenPort="$(free_port)" --brokerIP1=127.0.0.1 --storePathRootDir="$data" "$@" \
        >"$log" 2>&1 &
    pid=$!
    wait_listening "$port"
}

# wait_listening PORT [HOST]: wait up to ~10 s until PORT accepts
# connections; a server that never listens shows as the first checks failing.
wait_listening() {
    for _ in $(seq 1 200); do
        if (echo >"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

# start_replica ID MASTER_HA_PORT [OPTION...]: start a replica
# (brokerRole=SLAVE, brokerId ID) of the master listening for replicas on
# 127.0.0.1:MASTER_HA_PORT, registering with $ns, its store in
# $tmp/replica-ID and its log in $tmp/replica-ID.log, with the extra
# --key=value options, and wait until it listens. Sets replica_port,
# replica_addr and replica_pid, and adds the pid to replica_pids (for the
# EXIT trap's kill_running).
replica_pids=()
start_replica() {
    local id="$1" master_ha="$2"
    shift 2
    replica_port="$(free_port)"
    replica_addr="127.0.0.1:$replica_port"
    "$broker_bin" --listenPort="$replica_port" --haListenPort="$(free_port)" \
        --brokerIP1=127.0.0.1 --storePathRootDir="$tmp/replica-$id" --namesrvAddr="$ns" \
        --brokerRole=SLAVE --brokerId="$id" --haMasterAddress="127.0.0.1:$master_ha" "$@" \
        >"$tmp/replica-$id.log" 2>&1 &
    replica_pid=$!
    replica_pids+=("$replica_pid")
    wait_listening "$replica_port"
}

# stop_process PID LOG NAME: SIGTERM PID (a child of this shell) and check,
# as "NAME exits 0 after SIGTERM", that it exits 0 within ~30 s, with the
# end of LOG shown if not: a clean shutdown is part of every test.
stop_process() {
    local status=0
    kill -TERM "$1"
    for _ in $(seq 1 300); do
        if ! kill -0 "$1" 2>/dev/null; then break; fi
        sleep 0.1
    done
    wait "$1" || status=$?
    rc=$status
    out=""
    err="$(tail -20 "$2")"
    check_rc "$3 exits 0 after SIGTERM" 0
}

# stop_broker: stop_process for the broker start_broker started.
stop_broker() {
    stop_process "$pid" "$log" mqbroker
}

# ha_caught_up MASTER_ADDR REPLICA_ADDR...: true when every replica streams
# from its master and has applied all the master had committed just before
# (mqadmin haStatus of each); needs NAMESRV_ADDR.
ha_caught_up() {
    local master="$1" want got r
    shift
    want="$("$mqadmin" haStatus -b "$master" --json 2>/dev/null | python3 -c '
import json, sys
print(json.load(sys.stdin)["brokers"][0]["masterSequence"])')" || return 1
    for r in "$@"; do
        got="$("$mqadmin" haStatus -b "$r" --json 2>/dev/null | python3 -c '
import json, sys
b = json.load(sys.stdin)["brokers"][0]
print(b["appliedSequence"] if b["connected"] else -1)')" || return 1
        [ "$got" -ge "$want" ] || return 1
    done
}

# wait_caught_up SECONDS MASTER_ADDR REPLICA_ADDR...: ha_caught_up within SECONDS.
wait_caught_up() {
    local deadline=$((SECONDS + $1))
    shift
    while [ "$SECONDS" -lt "$deadline" ]; do
        ha_caught_up "$@" && return 0
        sleep 0.2
    done
    return 1
}

# Run a command; keep its stdout in $out and $tmp/out (for checks that read
# a file), its stderr in $err, its status in $rc.
run() {
    "$@" >"$tmp/out" 2>"$tmp/stderr"
    rc=$?
    out="$(cat "$tmp/out")"
    err="$(cat "$tmp/stderr")"
}

pass() {
    passed=$((passed + 1))
    echo "ok - $1"
}

# fail NAME: also show the last command's status and output, to debug from
# the test log alone.
fail() {
    failed=$((failed + 1))
    echo "FAIL - $1"
    echo "  status: $rc"
    echo "  stdout: $(head "${fail_head[@]}" <<<"$out")"
    echo "  stderr: $(head "${fail_head[@]}" <<<"$err")"
}

# check_rc NAME WANT: the last command exited with WANT.
check_rc() {
    if [ "$rc" -eq "$2" ]; then pass "$1"; else fail "$1 (want exit $2)"; fi
}

# check_out NAME REGEX: the last stdout matches (grep -E).
# Here-strings, not pipes: with pipefail, grep -q leaving early would let the
# writer die of SIGPIPE and turn a match into a failure.
check_out() {
    if grep -Eq -- "$2" <<<"$out"; then pass "$1"; else fail "$1 (stdout !~ /$2/)"; fi
}

# check_no_out NAME REGEX: no line of the last stdout matches.
check_no_out() {
    if grep -Eq -- "$2" <<<"$out"; then fail "$1 (stdout =~ /$2/)"; else pass "$1"; fi
}

# check_err NAME REGEX: the last stderr matches.
check_err() {
    if grep -Eq -- "$2" <<<"$err"; then pass "$1"; else fail "$1 (stderr !~ /$2/)"; fi
}

# check_count NAME REGEX N: exactly N lines of the last stdout match.
check_count() {
    local n
    n="$(grep -Ec -- "$2" <<<"$out")"
    if [ "$n" -eq "$3" ]; then pass "$1"; else fail "$1 ($n lines match /$2/, want $3)"; fi
}

# check_bad_args NAME CMD...: CMD rejects its arguments as a usage error:
# exit 2, an explanation on stderr and nothing on stdout, which a script
# might otherwise take for a result. Two checks, "NAME exits 2" and
# "NAME explains on stderr only".
check_bad_args() {
    local name="$1"
    shift
    run "$@"
    check_rc "$name exits 2" 2
    if [ -n "$err" ] && [ -z "$out" ]; then
        pass "$name explains on stderr only"
    else
        fail "$name explains on stderr only"
    fi
}

# json_true PYEXPR: PYEXPR, over the JSON read from stdin as `j`, is true;
# Python's complaints go to $tmp/pyerr. A test whose expressions need more
# names defines its own json_true after sourcing this file.
json_true() {
    python3 -c '
import json, sys
j = json.load(sys.stdin)
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" 2>"$tmp/pyerr"
}

# check_json NAME PYEXPR: PYEXPR holds over the last stdout.
check_json() {
    if json_true "$2" <<<"$out"; then
        pass "$1"
    else
        err="$err $(cat "$tmp/pyerr")"
        fail "$1 (json: $2)"
    fi
}

# wait_json PYEXPR CMD...: run CMD until it succeeds and PYEXPR holds over
# its JSON output, up to ~10 s, for state the broker or name server reaches
# asynchronously (registration, committed offsets, connections).
wait_json() {
    local expr="$1"
    shift
    for _ in $(seq 1 100); do
        run "$@"
        if [ "$rc" -eq 0 ] && json_true "$expr" <<<"$out"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Load for the tests that time every answer (python3 -c "$generate" P RATE
# STOP | lsmq-produce ... | python3 -c "$stamp"):
# Writes "p<producer> s<seq> " and filler (1 KiB a line) RATE times a second
# until the stop file appears.
generate='
import os, sys, time
producer, rate, stop = sys.argv[1], float(sys.argv[2]), sys.argv[3]
fill = "x" * 1000
seq = 0
while not os.path.exists(stop):
    sys.stdout.write("p%s s%d %s\n" % (producer, seq, fill))
    sys.stdout.flush()
    seq += 1
    time.sleep(1.0 / rate)
'
# Prefixes each line with the time it arrived, in ms since the epoch.
stamp='
import sys, time
for line in sys.stdin:
    sys.stdout.write("%d %s" % (time.time() * 1000, line))
    sys.stdout.flush()
'

# finish: print the summary and exit 0 only if nothing failed; keep the
# temporary directory (store, broker log) of a failed run for inspection.
finish() {
    echo "$passed passed, $failed failed"
    if [ "$failed" -eq 0 ]; then
        rm -rf "$tmp"
        exit 0
    fi
    echo "kept $tmp for inspection" >&2
    exit 1
}
