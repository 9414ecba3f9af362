#!/usr/bin/env bash
# End-to-end test of brokers in controller mode, from the admin's side:
# three name servers running the controller and three brokers of one
# group (enableControllerMode), on free loopback ports.
#   - settings that cannot work in controller mode are refused at start,
#     with a sentence saying which;
#   - the controller makes one broker master (epoch 1): it registers with
#     the name servers as brokerId 0, the others follow it and join the
#     sync state set (getSyncStateSet), every store knows epoch 1
#     (getBrokerEpoch) and sends are SEND_OK;
#   - the master is killed (-9): within 10 s another member is master in
#     epoch 2 and sends are SEND_OK again;
#   - the old master, started again on its store, rejoins as a replica of
#     the new one and the sync state set holds all three again; every
#     store knows epochs 1 and 2;
#   - after SIGTERM (exit 0 for every process) the three stores hold the
#     same messages (mqdump dump).
#
#   tests/e2e/controller_mode_test.sh BUILD_DIR
#
# Prints one line per check and a final "N passed, M failed"; exits 0 only
# when nothing failed.
set -uo pipefail

build="${1:?usage: controller_mode_test.sh BUILD_DIR}"
. "$(dirname "$0")/lib.sh"

namesrv_bin="$build/server/mqnamesrv"
require_bins "$mqadmin" "$mqdump" "$produce" "$broker_bin" "$namesrv_bin"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/lsmq-controller-mode-XXXXXX")"
ns_pids=()
broker_pids=(x "" "" "")
trap 'kill_running "${ns_pids[@]}" "${broker_pids[@]:1}"' EXIT

# ---- settings refused at start ---------------------------------------------

refused() {
    local name="$1" want="$2"
    shift 2
    run timeout 20 "$broker_bin" --listenPort="$(free_port)" --storePathRootDir="$tmp/refused" \
        --enableControllerMode=true "$@"
    check_rc "$name: refused at start" 1
    check_err "$name: says why" "$want"
}
refused "no controllerAddr" "needs controllerAddr" --brokerId=1
refused "brokerId 0" "set brokerId to 1, 2, 3" --controllerAddr=127.0.0.1:1 --brokerId=0
refused "brokerRole=SLAVE" "the controller decides who is master" \
    --controllerAddr=127.0.0.1:1 --brokerId=1 --brokerRole=SLAVE
refused "a lease of nothing" "at least twice" --controllerAddr=127.0.0.1:1 --brokerId=1 \
    --controllerHeartBeatTimeoutMills=1000 --brokerHeartbeatInterval=600

# ---- three controllers, three brokers --------------------------------------

ns_ports=("$(free_port)" "$(free_port)" "$(free_port)")
peers="n0=127.0.0.1:$(free_port);n1=127.0.0.1:$(free_port);n2=127.0.0.1:$(free_port)"
ctls="127.0.0.1:${ns_ports[0]};127.0.0.1:${ns_ports[1]};127.0.0.1:${ns_ports[2]}"
export NAMESRV_ADDR="$ctls"
for i in 0 1 2; do
    "$namesrv_bin" --listenPort="${ns_ports[$i]}" --enableControllerInNamesrv=true \
        --controllerPeers="$peers" --controllerSelfId="n$i" \
        --controllerStorePath="$tmp/controller-$i" >"$tmp/namesrv-$i.log" 2>&1 &
    ns_pids+=($!)
done
for i in 0 1 2; do wait_listening "${ns_ports[$i]}"; done

broker_ports=(x "$(free_port)" "$(free_port)" "$(free_port)")
broker_ha=(x "$(free_port)" "$(free_port)" "$(free_port)")
# start_member ID: broker ID of broker-a on its ports and store (again after a kill).
start_member() {
    "$broker_bin" --brokerIP1=127.0.0.1 --brokerName=broker-a --brokerId="$1" \
        --brokerRole=SYNC_MASTER --enableControllerMode=true --controllerAddr="$ctls" \
        --namesrvAddr="$ctls" --controllerHeartBeatTimeoutMills=3000 \
        --brokerHeartbeatInterval=500 --haMaxTimeSlaveNotCatchup=3000 \
        --listenPort="${broker_ports[$1]}" --haListenPort="${broker_ha[$1]}" \
        --storePathRootDir="$tmp/broker-$1" >>"$tmp/broker-$1.log" 2>&1 &
    broker_pids[$1]=$!
    wait_listening "${broker_ports[$1]}"
}
for id in 1 2 3; do start_member "$id"; done

# The controller's view as JSON: {"replicasInfoTable":{"broker-a":{...}}}.
sync_state() {
    "$mqadmin" getSyncStateSet -a "127.0.0.1:${ns_ports[0]}" -b broker-a --json
}
# master_id: the master's brokerId, as the controller says.
master_id() {
    sync_state 2>/dev/null | python3 -c '
import json, sys
print(json.load(sys.stdin)["replicasInfoTable"]["broker-a"]["masterBrokerId"])'
}
in_sync_expr() { # EPOCH N: the master's epoch is EPOCH and at least N brokers are in sync
    echo "j['replicasInfoTable']['broker-a']['masterEpoch']==$1 and \
len(j['replicasInfoTable']['broker-a']['inSyncReplicas'])>=$2"
}
wait_sync_state() { # SECONDS EPOCH N
    local deadline=$((SECONDS + $1))
    while [ "$SECONDS" -lt "$deadline" ]; do
        run sync_state
        [ "$rc" -eq 0 ] && json_true "$(in_sync_expr "$2" "$3")" <<<"$out" && return 0
        sleep 0.2
    done
    return 1
}

if wait_sync_state 30 1 3; then
    pass "a master in epoch 1, all three brokers in its sync state set"
else
    fail "a master in epoch 1, all three brokers in its sync state set"
fi
first="$(master_id)"
for _ in $(seq 1 50); do
    run "$mqadmin" clusterList
    grep -Eq "broker-a +0 +127.0.0.1:${broker_ports[$first]}" <<<"$out" && break
    sleep 0.2
done
check_out "clusterList: the master registered as brokerId 0" \
    "broker-a +0 +127.0.0.1:${broker_ports[$first]}"

run "$mqadmin" updateTopic -c DefaultCluster -t CtlTopic -r 4 -w 4
check_rc "updateTopic on the master" 0

# send N FROM: N messages body-FROM.. through the name servers; each retried
# until SEND_OK (a failover may be under way). Sets $sent_ok.
send() {
    local n="$1" from="$2" i
    sent_ok=0
    for ((i = from; i < from + n; i++)); do
        for _ in $(seq 1 100); do
            if echo "body-$i" | "$produce" -n "$ctls" -t CtlTopic >>"$tmp/sends" 2>&1 &&
                tail -1 "$tmp/sends" | grep -q SEND_OK; then
                sent_ok=$((sent_ok + 1))
                break
            fi
            sleep 0.1
        done
    done
}
send 50 0
if [ "$sent_ok" -eq 50 ]; then pass "50 sends SEND_OK"; else fail "50 sends SEND_OK ($sent_ok)"; fi

# epochs_expr LIST N: N brokers answer getBrokerEpoch and each knows exactly the epochs LIST.
epochs_expr() {
    echo "len(j['brokers'])==$2 and all([e['epoch'] for e in b['epochList']]==$1 \
for b in j['brokers'])"
}
if wait_json "$(epochs_expr '[1]' 3)" "$mqadmin" getBrokerEpoch -b broker-a --json; then
    pass "getBrokerEpoch: every broker knows epoch 1"
else
    fail "getBrokerEpoch: every broker knows epoch 1"
fi

# ---- the master dies --------------------------------------------------------

kill -9 "${broker_pids[$first]}"
wait "${broker_pids[$first]}" 2>/dev/null
killed_at=$SECONDS
if wait_sync_state 10 2 1; then
    pass "another broker is master in epoch 2 within 10 s"
else
    fail "another broker is master in epoch 2 within 10 s"
fi
second="$(master_id)"
if [ -n "$second" ] && [ "$second" != "$first" ]; then
    pass "the new master is another broker ($first -> $second)"
else
    fail "the new master is another broker ($first -> $second)"
fi
send 50 50
if [ "$sent_ok" -eq 50 ] && [ $((SECONDS - killed_at)) -lt 30 ]; then
    pass "50 sends SEND_OK through the new master"
else
    fail "50 sends SEND_OK through the new master ($sent_ok in $((SECONDS - killed_at)) s)"
fi

# ---- the old master returns --------------------------------------------------

start_member "$first"
if wait_sync_state 30 2 3; then
    pass "the old master rejoins: all three in the sync state set of epoch 2"
else
    fail "the old master rejoins: all three in the sync state set of epoch 2"
fi
run "$mqadmin" haStatus -b "127.0.0.1:${broker_ports[$first]}" --json
check_json "the old master follows the new one" \
    "j['brokers'][0]['masterAddr']=='127.0.0.1:${broker_ha[$second]}'"
if wait_json "$(epochs_expr '[1, 2]' 3)" "$mqadmin" getBrokerEpoch -b broker-a --json; then
    pass "getBrokerEpoch: every broker knows epochs 1 and 2"
else
    fail "getBrokerEpoch: every broker knows epochs 1 and 2"
fi
send 10 100
if [ "$sent_ok" -eq 10 ]; then pass "10 more sends SEND_OK"; else fail "10 more sends ($sent_ok)"; fi

# ---- the same messages everywhere --------------------------------------------

replicas=()
for id in 1 2 3; do
    [ "$id" = "$second" ] || replicas+=("127.0.0.1:${broker_ports[$id]}")
done
if wait_caught_up 30 "127.0.0.1:${broker_ports[$second]}" "${replicas[@]}"; then
    pass "both replicas caught up"
else
    fail "both replicas caught up"
fi
for id in 1 2 3; do
    stop_process "${broker_pids[$id]}" "$tmp/broker-$id.log" "broker $id"
    broker_pids[$id]=""
done
for i in 0 1 2; do
    stop_process "${ns_pids[$i]}" "$tmp/namesrv-$i.log" "name server $i"
done
ns_pids=()
for id in 1 2 3; do
    "$mqdump" dump -t CtlTopic "$tmp/broker-$id" >"$tmp/dump-$id" 2>"$tmp/dump-$id.err"
done
run wc -l "$tmp/dump-1" "$tmp/dump-2" "$tmp/dump-3"
if [ "$(wc -l <"$tmp/dump-$second")" -ge 110 ] && cmp -s "$tmp/dump-1" "$tmp/dump-2" &&
    cmp -s "$tmp/dump-2" "$tmp/dump-3"; then
    pass "mqdump dump: the three stores hold the same 110 messages or more"
else
    fail "mqdump dump: the three stores hold the same 110 messages or more"
fi

finish
