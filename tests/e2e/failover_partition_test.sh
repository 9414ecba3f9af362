#!/usr/bin/env bash
# End-to-end test of automatic failover across a network partition. Three
# hosts, each a network namespace holding one name server with the embedded
# controller (the three form the raft group) and one broker of group
# broker-a in controller mode; a fourth namespace holds the clients. All
# four hang off one bridge (10.201.0.0/24) in a fifth, switch namespace.
#
#   1. The controller makes one broker master (epoch 1). A topic of 4
#      queues is created on it and four synchronous liblsmq producers
#      (lsmq-produce) in the clients' namespace load it, every answer
#      timestamped; a fifth producer runs on the master's own host.
#   2. The master's host is cut off (nft drops everything on its link) for
#      CUT_S seconds, which cuts the master from the controller majority and
#      from both replicas at once, while the producer beside it still
#      reaches it. Checks:
#      - lease: no SEND_OK from the old master later than its lease
#        (controllerHeartBeatTimeoutMills - brokerHeartbeatInterval) + 1 s
#        after the cut; the producer beside it is refused, the remark
#        naming the lease, before the new master acknowledges anything,
#        and within the lease + 1 s of the cut unless the controller leader
#        was on the cut host (it answers heartbeats until it steps down);
#      - election: the controller majority names another broker master
#        with a higher epoch, and the clients' producers get SEND_OK from
#        it within 10 s of the cut.
#   3. The link is healed: the old master follows the new one as a replica.
#      Once the load has stopped and the replicas have caught up, every
#      broker exits 0 on SIGTERM and then
#      - mqdump dump prints the same messages from all three stores;
#      - every message answered SEND_OK is there, with its body, at the
#        queue and offset of its answer;
#      - no queue offset was acknowledged for two different bodies, and
#        each queue holds offsets 0..n-1 once each.
#   Every name server exits 0 on SIGTERM too. The namespaces are removed
#   however the test ends.
#
# The scenario runs twice, on fresh processes and stores: first with the
# master on a host other than the controller leader's ("controller leader
# apart": the cut leaves the raft leader on the majority side), then on the
# same host ("controller leader with": the cut also takes the raft leader,
# which keeps answering the old master's heartbeats until it steps down).
# Each check's name starts with its round.
#
# Which broker answered a send is read from the answer's offsetMsgId, whose
# first 16 hex digits are the storing broker's address (IPv4 and port).
#
#   tests/e2e/failover_partition_test.sh BUILD_DIR
#
# Needs root and ip and nft (scripts/setup.sh installs iproute2 and
# nftables); without them it fails at once saying so. Prints one line per
# check and a final "N passed, M failed"; exits 0 only when nothing failed.
set -uo pipefail

build="${1:?usage: failover_partition_test.sh BUILD_DIR}"
. "$(dirname "$0")/lib.sh"
namesrv_bin="$build/server/mqnamesrv"

require_bins "$mqadmin" "$mqdump" "$produce" "$broker_bin" "$namesrv_bin"

# Each check is named after its round.
round_name=""
eval "lib_$(declare -f pass)"
eval "lib_$(declare -f fail)"
pass() { lib_pass "${round_name:+$round_name: }$1"; }
fail() { lib_fail "${round_name:+$round_name: }$1"; }

# missing WHAT: stop at once, as one failed check: nothing can run without it.
missing() {
    echo "failover_partition_test: $1" >&2
    echo "FAIL - $1"
    echo "0 passed, 1 failed"
    exit 1
}
[ "$(id -u)" -eq 0 ] || missing "needs root: it makes network namespaces, a bridge and nft rules"
for tool in ip nft; do
    command -v "$tool" >/dev/null 2>&1 ||
        missing "needs $tool (scripts/setup.sh installs iproute2 and nftables)"
done

HEARTBEAT_TIMEOUT_MS=3000
HEARTBEAT_INTERVAL_MS=500
LEASE_MS=$((HEARTBEAT_TIMEOUT_MS - HEARTBEAT_INTERVAL_MS))
ELECTION_MS=10000 # from the cut to SEND_OK from the new master
PRODUCERS=4       # in the clients' namespace; one more beside the master
RATE=50           # sends per second per producer, at most
SEND_TIMEOUT_MS=2000
# The producer beside the master gives up on a send soon, so that a send
# waiting for the cut replicas does not hide when the master starts refusing.
BESIDE_TIMEOUT_MS=500
CUT_S=12
HOSTS=(0 1 2)
host_ip() { echo "10.201.0.$(($1 + 1))"; }
CLIENT_IP=10.201.0.10
NAMESRVS="$(host_ip 0):9876;$(host_ip 1):9876;$(host_ip 2):9876"
PEERS="n0=$(host_ip 0):9880;n1=$(host_ip 1):9880;n2=$(host_ip 2):9880"
TOPIC=PartT
ns_sw="lsmq-$$-sw"
ns_cl="lsmq-$$-cl"
host_ns() { echo "lsmq-$$-h$1"; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/lsmq-failover-partition-XXXXXX")"
namesrv_pids=("" "" "")
broker_pids=("" "" "")
load_pids=()

# Whatever happens: every process in the namespaces killed, the namespaces
# (and with them the veth pairs and the bridge) removed.
cleanup() {
    local n p
    for n in "$ns_cl" "$(host_ns 0)" "$(host_ns 1)" "$(host_ns 2)" "$ns_sw"; do
        for p in $(ip netns pids "$n" 2>/dev/null); do
            kill -9 "$p" 2>/dev/null
        done
    done
    kill_running "${load_pids[@]}" "${broker_pids[@]}" "${namesrv_pids[@]}"
    for n in "$ns_cl" "$(host_ns 0)" "$(host_ns 1)" "$(host_ns 2)" "$ns_sw"; do
        ip netns del "$n" 2>/dev/null
    done
}
# Quietly: not the shell's word on each server it reaps.
trap 'cleanup 2>/dev/null' EXIT

in_cl() { ip netns exec "$ns_cl" "$@"; }
in_host() {
    local i="$1"
    shift
    ip netns exec "$(host_ns "$i")" "$@"
}

# mark NAME: the time a phase began, in the clock the answers are stamped with.
mark() {
    echo "$1 $(now_ms)" >>"$rd/phases"
}

# ---- the network -------------------------------------------------------------

# attach NS PORT IP: a veth pair from NS (eth0, holding IP) to the bridge
# (PORT, in the switch namespace).
attach() {
    ip netns add "$1" &&
        ip -n "$1" link add eth0 type veth peer name "$2" netns "$ns_sw" &&
        ip -n "$1" addr add "$3/24" dev eth0 &&
        ip -n "$1" link set lo up && ip -n "$1" link set eth0 up &&
        ip -n "$ns_sw" link set "$2" master br0 && ip -n "$ns_sw" link set "$2" up
}
make_network() {
    ip netns add "$ns_sw" && ip -n "$ns_sw" link add br0 type bridge &&
        ip -n "$ns_sw" link set br0 up &&
        attach "$(host_ns 0)" p0 "$(host_ip 0)" &&
        attach "$(host_ns 1)" p1 "$(host_ip 1)" &&
        attach "$(host_ns 2)" p2 "$(host_ip 2)" &&
        attach "$ns_cl" pc "$CLIENT_IP"
}

# cut_host I: host I loses its link: nothing in or out but its own loopback.
cut_host() {
    in_host "$1" nft -f - <<EOF
table inet lsmq_cut {
    chain in { type filter hook input priority 0; policy accept; iifname "eth0" drop; }
    chain out { type filter hook output priority 0; policy accept; oifname "eth0" drop; }
}
EOF
}
heal_host() {
    in_host "$1" nft delete table inet lsmq_cut
}

# ---- name servers with the controller, and the brokers ------------------------

# wait_up I PORT PID: host I listens on PORT within ~10 s, and PID, the
# server meant to, has not exited meanwhile.
wait_up() {
    local ip
    ip="$(host_ip "$1")"
    for _ in $(seq 1 100); do
        kill -0 "$3" 2>/dev/null || return 1
        if in_host "$1" bash -c "(echo >/dev/tcp/$ip/$2) 2>/dev/null"; then return 0; fi
        sleep 0.1
    done
    return 1
}

# check_up I PORT PID LOG NAME: "NAME listens" passes when wait_up does;
# else it fails showing the end of $rd/hI/LOG.log.
check_up() {
    if wait_up "$1" "$2" "$3"; then
        pass "$5 listens"
    else
        rc=1 out="" err="$(tail -n 5 "$rd/h$1/$4.log")"
        fail "$5 listens"
    fi
}

# The controller's view of broker-a: CONTROLLER_GET_REPLICA_INFO (1004) to
# each name server in turn until one answers as the raft leader (followers
# answer CONTROLLER_NOT_LEADER, 2007). Prints "masterAddress masterEpoch
# masterBrokerId leader"; fails when no controller answered. With "leader"
# after the addresses, prints only the leader's address.
replica_info='
import json, socket, struct, sys

def request(addr, code, ext):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=1)
    s.settimeout(1)
    hdr = json.dumps({"code": code, "language": "JAVA", "version": 453, "opaque": 1,
                      "flag": 0, "extFields": ext}).encode()
    s.sendall(struct.pack(">II", 4 + len(hdr), len(hdr)) + hdr)
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
        chunk = s.recv(65536)
        if not chunk:
            raise IOError("closed")
        data += chunk
    s.close()
    hlen = struct.unpack(">I", data[4:8])[0] & 0xFFFFFF
    return json.loads(data[8:8 + hlen])

leader_only = sys.argv[2:] == ["leader"]
for addr in sys.argv[1].split(";"):
    try:
        r = request(addr, 1004, {"brokerName": "broker-a"})
    except Exception:
        continue
    if leader_only:
        if r.get("code") != 2007:
            print(addr)
            sys.exit(0)
    elif r.get("code") == 0:
        x = r.get("extFields") or {}
        print(x.get("masterAddress") or "-", x.get("masterEpoch", "-"),
              x.get("masterBrokerId", "-"), addr)
        sys.exit(0)
sys.exit(1)
'
# controller_view: replica_info from the clients' namespace; sets
# master_addr, master_epoch, master_id, leader (empty if nobody answered).
controller_view() {
    local view
    master_addr="" master_epoch="" master_id="" leader=""
    view="$(in_cl python3 -c "$replica_info" "$NAMESRVS" 2>/dev/null)" || return 1
    read -r master_addr master_epoch master_id leader <<<"$view"
    [ "$master_addr" != "-" ] || master_addr=""
    [ -n "$master_addr" ]
}

# host_of ADDR: the index of the host whose broker listens at ADDR.
host_of() {
    local i
    for i in "${HOSTS[@]}"; do
        if [ "${1%:*}" = "$(host_ip "$i")" ]; then
            echo "$i"
            return 0
        fi
    done
    return 1
}

# load P NS TIMEOUT_MS: producer P sending from namespace NS. A send that
# fails is printed as FAILED and the producer goes on; so its status is not
# checked.
load() {
    (
        python3 -c "$generate" "$1" "$RATE" "$rd/stop" |
            ip netns exec "$2" "$produce" -n "$NAMESRVS" -t "$TOPIC" -g "part-pg-$1" \
                --timeout "$3" 2>"$rd/produce-$1.err" |
            python3 -c "$stamp" >"$rd/produce-$1.out"
    ) &
    load_pids+=($!)
}

# The answers against the phases and the reference store: one "ok NAME"
# or "fail NAME: WHY" line per check.
judge='
import json, sys
tmp, producers = sys.argv[1], int(sys.argv[2])
lease_ms, election_ms, beside_timeout_ms = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
leader_on_cut = sys.argv[6] == "1"
old, new, dump = sys.argv[7], sys.argv[8], sys.argv[9]
beside = producers + 1
phase = {}
for line in open(tmp + "/phases"):
    name, t = line.split()
    phase[name] = int(t)

def store_host(offset_msg_id):
    """The broker that stored a message, from its offsetMsgId (IPv4)."""
    h = offset_msg_id[:16]
    ip = ".".join(str(int(h[i:i + 2], 16)) for i in range(0, 8, 2))
    return "%s:%d" % (ip, int(h[8:], 16))

STORED = ("SEND_OK", "FLUSH_SLAVE_TIMEOUT", "SLAVE_NOT_AVAILABLE", "FLUSH_DISK_TIMEOUT")
# answers[p] = [(time, status, broker, queue, offset, text)], in send order
answers = {}
for p in range(1, beside + 1):
    rows = []
    for line in open("%s/produce-%d.out" % (tmp, p)):
        f = line.split()
        t, status = int(f[0]), f[1]
        broker = q = o = None
        if status in STORED:
            kv = dict(x.split("=", 1) for x in f[2:])
            broker = store_host(kv["offsetMsgId"])
            q, o = int(kv["queue"].rsplit(":", 1)[1]), int(kv["offset"])
        rows.append((t, status, broker, q, o, " ".join(f[2:])))
    answers[p] = rows

def check(ok, name, why=""):
    print(("ok %s" % name) if ok else ("fail %s: %s" % (name, why)))

every = [a for rows in answers.values() for a in rows]
before = [a for a in every if a[0] < phase["cut"] and a[1] == "SEND_OK" and a[2] == old]
check(len(before) >= 50, "before the cut the old master acknowledges (%d SEND_OK)" % len(before),
      "want at least 50")

fence = phase["cut"] + lease_ms + 1000
late = [a for a in every if a[0] > fence and a[1] == "SEND_OK" and a[2] == old]
check(not late, "no SEND_OK from the old master later than lease + 1 s after the cut",
      "%d, the first %d ms after the cut: %s" % (len(late), late[0][0] - phase["cut"], late[0][5])
      if late else "")
# When the old master began refusing, as the producer beside it saw it.
refusals = [a for a in answers[beside] if phase["cut"] < a[0] < phase["heal"] and
            a[1] == "FAILED" and "lease" in a[5]]
fenced = refusals[0][0] - phase["cut"] if refusals else None
from_new = [a[0] for p in range(1, producers + 1) for a in answers[p]
            if a[0] > phase["cut"] and a[1] == "SEND_OK" and a[2] == new]
first = min(from_new) - phase["cut"] if from_new else None
check(fenced is not None and (first is None or fenced < first),
      "the old master refuses sends for its lease %s ms after the cut, before the new "
      "master acknowledges any (%s ms)" % (fenced, first), "no refusal naming the lease"
      if fenced is None else "the new master acknowledged first")
if leader_on_cut:
    print("# the controller leader shared the host of the old master and answered its heartbeats "
          "until it stepped down: the lease is not held to lease + 1 s")
else:
    check(fenced is not None and fenced <= lease_ms + 1000,
          "the old master refuses within its lease + 1 s of the cut (%s ms)" % fenced,
          "%s ms" % fenced)
# Once a send waiting from before the refusals has had its timeout, every
# answer beside the old master is a refusal for the lease.
cut_beside = [a for a in answers[beside] if fenced is not None and
              phase["cut"] + fenced + beside_timeout_ms < a[0] < phase["heal"]]
other = [a for a in cut_beside if not (a[1] == "FAILED" and "lease" in a[5])]
check(cut_beside and not other,
      "from then on every send beside the old master is refused for its lease (%d answers)" %
      len(cut_beside), "%d of %d answers otherwise; e.g. %s" %
      (len(other), len(cut_beside), [a[1] + " " + a[5] for a in other[:2]]))

check(new != old and first is not None and first <= election_ms,
      "the clients get SEND_OK from the new master within %d ms of the cut (%s ms)" %
      (election_ms, first), "first one %s ms after the cut" % first)
# The name server that was cut off routes the new master once its registration,
# retried every 3 s, gets through: from then on.
tail = [a for p in range(1, producers + 1) for a in answers[p]
        if phase["rejoined"] + 3000 < a[0] < phase["end"]]
bad = sorted(set(a[1] for a in tail if a[1] != "SEND_OK" or a[2] != new))
check(tail and not bad, "after the heal every client answer is SEND_OK from the new master (%d)"
      % len(tail), "also %s" % bad)

# The reference store, (queue, offset) -> "p<producer> s<seq>".
held, doubles = {}, 0
for line in open(dump):
    m = json.loads(line)
    key = (m["queueId"], m["queueOffset"])
    doubles += key in held
    held[key] = " ".join(m["body"].split(" ", 2)[:2])
acked, lost, named = 0, [], {}
for p, rows in answers.items():
    # Sends are one per input line, so the n-th answer is for body "p<p> s<n>".
    for seq, a in enumerate(rows):
        if a[1] != "SEND_OK":
            continue
        body = "p%d s%d" % (p, seq)
        acked += 1
        if held.get((a[3], a[4])) != body:
            lost.append((body, a[3], a[4], a[2], held.get((a[3], a[4]))))
        named.setdefault((a[3], a[4]), set()).add(body)
check(acked and not lost, "every SEND_OK body is stored at its queue and offset (%d)" % acked,
      "%d of %d not there, e.g. %s" % (len(lost), acked, lost[:3]))
twice = {k: v for k, v in named.items() if len(v) > 1}
check(not twice, "no queue offset acknowledged for two bodies",
      "%d, e.g. %s" % (len(twice), list(twice.items())[:3]))
by_queue = {}
for q, o in held:
    by_queue.setdefault(q, []).append(o)
gaps = {q: len(v) for q, v in by_queue.items() if sorted(v) != list(range(len(v)))}
check(held and not doubles and not gaps and len(set(held.values())) == len(held),
      "each queue holds offsets 0..n-1 once, one body each (%d messages)" % len(held),
      "%d doubles, queues with gaps %s, %d bodies for %d messages" %
      (doubles, gaps, len(set(held.values())), len(held)))
'

# start_member I: broker I+1 of broker-a on host I.
start_member() {
    ip netns exec "$(host_ns "$1")" "$broker_bin" --brokerIP1="$(host_ip "$1")" \
        --brokerName=broker-a --brokerId=$(($1 + 1)) --brokerRole=SYNC_MASTER \
        --enableControllerMode=true --controllerAddr="$NAMESRVS" --namesrvAddr="$NAMESRVS" \
        --controllerHeartBeatTimeoutMills="$HEARTBEAT_TIMEOUT_MS" \
        --brokerHeartbeatInterval="$HEARTBEAT_INTERVAL_MS" --haMaxTimeSlaveNotCatchup=3000 \
        --listenPort=10911 --storePathRootDir="$rd/h$1/store" >"$rd/h$1/broker.log" 2>&1 &
    broker_pids[$1]=$!
}

# partition_round PLACEMENT: the whole scenario on a fresh network, with
# the first master on the controller leader's host (with) or on another
# (apart). Leaves its processes and namespaces to cleanup.
partition_round() {
    placement="$1"
    round_name="controller leader $placement"
    rd="$tmp/$placement"
    failed_before=$failed
    namesrv_pids=("" "" "")
    broker_pids=("" "" "")
    mkdir -p "$rd"
    echo "# ---- the master's host and the controller leader's: $placement"
    make_network || missing "cannot make the network namespaces, their veth pairs and the bridge"
    for i in "${HOSTS[@]}"; do
        mkdir -p "$rd/h$i"
        # ip netns exec runs the program in place: $! is the server itself.
        ip netns exec "$(host_ns "$i")" "$namesrv_bin" --listenPort=9876 \
            --enableControllerInNamesrv=true --controllerPeers="$PEERS" --controllerSelfId="n$i" \
            --controllerStorePath="$rd/h$i/controller" >"$rd/h$i/namesrv.log" 2>&1 &
        namesrv_pids[i]=$!
    done
    for i in "${HOSTS[@]}"; do
        check_up "$i" 9876 "${namesrv_pids[i]}" namesrv "name server $i with the controller"
    done
    [ "$failed" -eq "$failed_before" ] || return 0 # nothing below can run without them
    # The placement decides the host of the first broker, the one the
    # controller makes master: the raft leader's host or the next one.
    leader_host=""
    for _ in $(seq 1 100); do
        view="$(in_cl python3 -c "$replica_info" "$NAMESRVS" leader 2>/dev/null)" &&
            leader_host="$(host_of "$view")" && break
        sleep 0.2
    done
    rc=1 out="" err="$(tail -q -n 3 "$rd"/h*/namesrv.log)"
    if [ -z "$leader_host" ]; then
        fail "the controllers elect a raft leader"
        return 0
    fi
    pass "the controllers elect a raft leader (on host $leader_host)"
    first_host=$(((leader_host + 1) % 3))
    [ "$placement" != with ] || first_host=$leader_host
    start_member "$first_host"
    for _ in $(seq 1 100); do
        controller_view && break
        sleep 0.2
    done
    for i in "${HOSTS[@]}"; do
        [ "$i" = "$first_host" ] || start_member "$i"
    done
    for i in "${HOSTS[@]}"; do
        check_up "$i" 10911 "${broker_pids[i]}" broker "broker $((i + 1))"
    done
    [ "$failed" -eq "$failed_before" ] || return 0
    export NAMESRV_ADDR="$NAMESRVS"

    got=0
    for _ in $(seq 1 100); do
        if controller_view && old_host="$(host_of "$master_addr")"; then
            got=1
            break
        fi
        sleep 0.2
    done
    rc=$((1 - got)) out="$master_addr epoch $master_epoch"
    err="$(tail -q -n 3 "$rd"/h*/namesrv.log)"
    if [ "$got" -eq 1 ] && [ "$master_epoch" = 1 ]; then
        pass "the controller names a master, epoch 1 ($master_addr, broker $master_id)"
    else
        fail "the controller names a master, epoch 1"
        return 0 # nothing below can run without a master
    fi
    old_master="$master_addr"
    echo "# old master $old_master on host $old_host; controller leader $leader"

    # in_sync_within SECONDS ADDR N: the master at ADDR counts N replicas in sync.
    in_sync_within() {
        local deadline=$((SECONDS + $1))
        while [ "$SECONDS" -lt "$deadline" ]; do
            run in_cl "$mqadmin" haStatus -b "$2" --json
            if [ "$rc" -eq 0 ] &&
                json_true "j['brokers'][0]['inSyncSlaveNums'] >= $3" <<<"$out"; then
                return 0
            fi
            sleep 0.2
        done
        return 1
    }
    if in_sync_within 20 "$old_master" 2; then
        pass "both replicas follow the master in sync"
    else
        fail "both replicas follow the master in sync"
    fi
    run in_cl "$mqadmin" updateTopic -b "$old_master" -t "$TOPIC" -r 4 -w 4
    check_rc "updateTopic $TOPIC (4 queues) on the master" 0
    if wait_json "len(j['queueDatas']) > 0 and any(b['brokerAddrs'].get('0') == '$old_master'
                  for b in j['brokerDatas'])" in_cl "$mqadmin" topicRoute -t "$TOPIC" --json; then
        pass "the name servers route $TOPIC to the master"
    else
        fail "the name servers route $TOPIC to the master"
    fi

    # ---- load, the cut, the heal ----------------------------------------------

    for p in $(seq 1 "$PRODUCERS"); do
        load "$p" "$ns_cl" "$SEND_TIMEOUT_MS"
    done
    beside=$((PRODUCERS + 1)) # the producer on the master's host
    load "$beside" "$(host_ns "$old_host")" "$BESIDE_TIMEOUT_MS"

    sleep 3
    # Where the controller leader is decides what bounds the old master's
    # lease: on the cut host, it answers heartbeats until it steps down.
    controller_view
    leader_on_cut=0
    [ "${leader%:*}" != "$(host_ip "$old_host")" ] || leader_on_cut=1
    echo "# at the cut: controller leader $leader"
    mark cut
    cut_ms="$(awk '$1 == "cut" { print $2 }' "$rd/phases")"
    cut_host "$old_host" || missing "nft cannot cut the master's host off"

    # The majority elects: a master other than the old one, a higher epoch.
    elected=0
    deadline=$((SECONDS + CUT_S))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if controller_view && [ "$master_addr" != "$old_master" ] && [ "$master_epoch" -ge 2 ]; then
            elected=1
            mark elected
            took_ms=$(($(now_ms) - cut_ms))
            break
        fi
        sleep 0.2
    done
    new_master="$master_addr"
    rc=$((1 - elected)) out="master $master_addr epoch $master_epoch leader $leader" err=""
    if [ "$elected" -eq 1 ]; then
        why="$new_master, broker $master_id, $took_ms ms after the cut"
        pass "the majority elects a new master, epoch $master_epoch ($why)"
    else
        fail "the majority elects a new master with a higher epoch"
    fi
    echo "# new master $new_master; controller leader $leader"
    # The rest of the cut, then the heal.
    sleep "$(python3 -c "print(max(0, $CUT_S - ($(now_ms) - $cut_ms) / 1000.0))")"
    mark heal
    heal_host "$old_host"

    # The old master rejoins: a replica streaming from the new master's host.
    rejoined=0
    if [ "$elected" -eq 1 ]; then
        for _ in $(seq 1 100); do
            run in_cl "$mqadmin" haStatus -b "$old_master" --json
            if [ "$rc" -eq 0 ] && json_true "(not j['brokers'][0]['master'] and
                    j['brokers'][0]['connected'] and
                    (j['brokers'][0].get('masterAddr') or '').split(':')[0] ==
                    '${new_master%:*}')" \
                <<<"$out"; then
                rejoined=1
                break
            fi
            sleep 0.2
        done
    fi
    if [ "$rejoined" -eq 1 ]; then
        pass "healed, the old master follows the new master as a replica"
    else
        fail "healed, the old master follows the new master as a replica"
    fi
    mark rejoined
    sleep 6 # the check looks at the last 3 s (the judge says why)
    mark end
    touch "$rd/stop"
    for p in "${load_pids[@]}"; do
        wait "$p"
    done
    load_pids=()

    # Every replica has applied all the new master committed.
    if [ "$elected" -eq 1 ]; then
        run in_cl "$mqadmin" haStatus -b "$new_master" --json
        master_seq="$(python3 -c 'import json, sys
print(json.load(sys.stdin)["brokers"][0]["masterSequence"])' <<<"$out" 2>/dev/null || echo 0)"
        lagging=""
        for i in "${HOSTS[@]}"; do
            addr="$(host_ip "$i"):10911"
            [ "$addr" != "$new_master" ] || continue
            caught=0
            for _ in $(seq 1 150); do
                run in_cl "$mqadmin" haStatus -b "$addr" --json
                if [ "$rc" -eq 0 ] && [ "$master_seq" -gt 0 ] &&
                    json_true "(j['brokers'][0]['connected'] and
                                j['brokers'][0]['appliedSequence'] >= $master_seq)" <<<"$out"; then
                    caught=1
                    break
                fi
                sleep 0.2
            done
            [ "$caught" -eq 1 ] || lagging="$lagging $addr"
        done
        rc=0
        [ -z "$lagging" ] || rc=1
        why="sequence $master_seq${lagging:+; behind:$lagging}"
        check_rc "both replicas catch up with the new master ($why)" 0
    else
        rc=1 out="" err=""
        fail "both replicas catch up with the new master (no new master)"
    fi

    for i in "${HOSTS[@]}"; do
        stop_process "${broker_pids[i]}" "$rd/h$i/broker.log" "broker $((i + 1))"
        broker_pids[i]=""
    done

    mkdir -p "$rd/scratch"
    for i in "${HOSTS[@]}"; do
        TMPDIR="$rd/scratch" run "$mqdump" dump -t "$TOPIC" --no-progress "$rd/h$i/store"
        cp "$tmp/out" "$rd/h$i.dump"
        check_rc "mqdump dump of broker $((i + 1))'s store" 0
    done
    ref="$(host_of "${new_master:-$old_master}")"
    for i in "${HOSTS[@]}"; do
        [ "$i" != "$ref" ] || continue
        rc=0
        out="$(diff "$rd/h$ref.dump" "$rd/h$i.dump" | head -c 1500)" || rc=1
        err=""
        check_rc "mqdump dump: broker $((i + 1)) holds the same messages as broker $((ref + 1))" 0
    done

    python3 -c "$judge" "$rd" "$PRODUCERS" "$LEASE_MS" "$ELECTION_MS" "$BESIDE_TIMEOUT_MS" \
        "$leader_on_cut" "$old_master" \
        "${new_master:-none}" "$rd/h$ref.dump" >"$rd/judged" 2>"$rd/pyerr"
    rc=$?
    out=""
    err="$(cat "$rd/pyerr")"
    [ "$rc" -eq 0 ] || fail "the answers and the stores could be judged"
    while IFS= read -r line; do
        case "$line" in
        "ok "*) pass "${line#ok }" ;;
        "# "*) echo "$line" ;;
        *)
            rc=1 out="${line#fail }" err=""
            fail "${line#fail }"
            ;;
        esac
    done <"$rd/judged"

    for i in "${HOSTS[@]}"; do
        stop_process "${namesrv_pids[i]}" "$rd/h$i/namesrv.log" "name server $i"
        namesrv_pids[i]=""
    done
}

partition_round apart
cleanup 2>/dev/null
partition_round with
finish
