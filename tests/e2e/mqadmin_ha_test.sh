#!/usr/bin/env bash
# End-to-end test of a broker group from the admin's side: mqbroker refuses
# replication settings that cannot work (with a sentence saying which), and
# against a master with one replica mqadmin clusterList shows both under
# their brokerIds, haStatus shows each side (text, --json, -c), and the
# replica refuses an admin write with upstream's remark. Both brokers must
# then exit 0 on SIGTERM.
#
#   tests/e2e/mqadmin_ha_test.sh BUILD_DIR
#
# Prints one line per check and a final "N passed, M failed"; exits 0 only
# when nothing failed.
set -uo pipefail

build="${1:?usage: mqadmin_ha_test.sh BUILD_DIR}"
. "$(dirname "$0")/lib.sh"

require_bins "$mqadmin" "$broker_bin"

trap 'kill_running "${replica_pids[@]}" "$pid"' EXIT

# ---- settings refused at start ---------------------------------------------

tmp="$(mktemp -d "${TMPDIR:-/tmp}/lsmq-mqadmin-ha-XXXXXX")"
refused() {
    local name="$1" want="$2"
    shift 2
    run timeout 20 "$broker_bin" --listenPort="$(free_port)" --storePathRootDir="$tmp/refused" "$@"
    check_rc "$name: refused at start" 1
    check_err "$name: says why" "$want"
}
refused "SLAVE with brokerId 0" "brokerRole=SLAVE needs brokerId > 0" \
    --brokerRole=SLAVE --brokerId=0 --haMasterAddress=127.0.0.1:1
refused "a master with brokerId 1" "needs brokerId=0" --brokerRole=SYNC_MASTER --brokerId=1
refused "haMasterAddress on a master" "haMasterAddress is for a replica" \
    --haMasterAddress=127.0.0.1:10912
refused "a replica that cannot find its master" "needs haMasterAddress or a name server" \
    --brokerRole=SLAVE --brokerId=1
refused "SYNC_MASTER waiting for no replica" "inSyncReplicas=0" \
    --brokerRole=SYNC_MASTER --inSyncReplicas=0
run "$broker_bin" --brokerRole=MASTER
check_rc "an unknown brokerRole: bad usage" 2
check_err "an unknown brokerRole: says the values" "ASYNC_MASTER, SYNC_MASTER or SLAVE"
rm -rf "$tmp"

# ---- a master and its replica ----------------------------------------------

master_ha_port="$(free_port)"
start_broker mqadmin-ha --brokerRole=SYNC_MASTER --haListenPort="$master_ha_port"
start_replica 1 "$master_ha_port"
export NAMESRV_ADDR="$ns"

if wait_json "len([b for c in j['clusters'] for b in c['brokers']])==2" \
    "$mqadmin" clusterList --json; then
    pass "clusterList lists the master and the replica"
else
    fail "clusterList lists the master and the replica"
fi
run "$mqadmin" clusterList
check_out "clusterList: the master as brokerId 0" "broker-a +0 +$addr"
check_out "clusterList: the replica as brokerId 1" "broker-a +1 +$replica_addr"

if wait_json "j['brokers'][0]['inSyncSlaveNums']==1" "$mqadmin" haStatus -b "$addr" --json; then
    pass "haStatus: the master counts its replica in sync"
else
    fail "haStatus: the master counts its replica in sync"
fi
check_json "haStatus --json: the master's replica by its address" \
    "(j['brokers'][0]['master'] and j['brokers'][0]['brokerRole']=='SYNC_MASTER' and
      j['brokers'][0]['replicas'][0]['addr']=='$replica_addr' and
      j['brokers'][0]['replicas'][0]['inSync'] and j['brokers'][0]['replicas'][0]['diff']==0)"
run "$mqadmin" haStatus -b "$addr"
check_rc "haStatus -b master" 0
check_out "haStatus: the master's header" "^#MasterAddr	$addr"
check_out "haStatus: one replica" "^#SlaveNum	1"
check_out "haStatus: the replica's row" "^$replica_addr +[0-9]+ +0 +0 +[0-9]+ +OK +streaming"
run "$mqadmin" haStatus -c DefaultCluster
check_out "haStatus -c: the cluster's master" "^#MasterAddr	$addr"
run "$mqadmin" haStatus -b "$replica_addr"
check_out "haStatus: the replica's master" "^#MasterAddr	127.0.0.1:$master_ha_port"
check_out "haStatus: the replica streams" "^#Connected	true"
check_out "haStatus: the replica's applied sequence" "^#AppliedSequence	[1-9][0-9]*"
run "$mqadmin" haStatus -b "$replica_addr" --json
check_json "haStatus --json: a replica" \
    "(not j['brokers'][0]['master'] and j['brokers'][0]['connected'] and
      j['brokers'][0]['brokerRole']=='SLAVE')"

run "$mqadmin" updateTopic -b "$replica_addr" -t OnTheReplica
check_rc "updateTopic on a replica fails" 1
check_err "updateTopic on a replica: upstream's slave remark" \
    "Can't modify topic or subscription group from slave broker"
run "$mqadmin" updateTopic -b "$addr" -t OnTheMaster
check_rc "updateTopic on the master" 0

stop_process "$replica_pid" "$tmp/replica-1.log" "the replica"
stop_broker
finish
