#!/usr/bin/env bash
# End-to-end test of tools/mqadmin against a real mqbroker: starts the
# broker with an embedded name server on free loopback ports and a
# temporary store, runs every mqadmin command in text and --json form and
# checks what they print (routes after updateTopic, max offsets after
# lsmq-produce, consumer offsets after lsmq-consume, connections of a live
# consumer, topics gone after deleteTopic), that bad options exit 2 and
# that refusals exit 1 with the server's code and remark. Finally stops the
# broker with SIGTERM and requires a clean exit.
#
#   tests/e2e/mqadmin_test.sh BUILD_DIR
#
# Prints one line per check and a final "N passed, M failed"; exits 0 only
# when nothing failed.
set -uo pipefail

build="${1:?usage: mqadmin_test.sh BUILD_DIR}"
. "$(dirname "$0")/lib.sh"

require_bins "$mqadmin" "$produce" "$consume" "$broker_bin"

consumer_pid=""
trap 'kill_running "$consumer_pid" "$pid"' EXIT
start_broker mqadmin
export NAMESRV_ADDR="$ns"

# The broker registers with its name server just after it starts listening.
if wait_json "any(b['addr']=='$addr' for c in j['clusters'] for b in c['brokers'])" \
    "$mqadmin" clusterList --json; then
    pass "the broker registers with the name server"
else
    fail "the broker registers with the name server"
fi

# ---- help and bad options --------------------------------------------------

run "$mqadmin"
check_rc "no arguments lists the commands" 0
for cmd in updateTopic deleteTopic topicList topicRoute topicStatus clusterList brokerStatus \
    consumerProgress consumerConnection; do
    check_out "command list has $cmd" "^   $cmd "
done
run "$mqadmin" help
check_rc "help lists the commands" 0
check_out "help names consumerProgress" "consumerProgress"
run "$mqadmin" help updateTopic
check_rc "help updateTopic" 0
for o in "-b,--brokerAddr" "-c,--clusterName" "-t,--topic" "-r,--readQueueNums" \
    "-w,--writeQueueNums" "-p,--perm" "-o,--order" "-u,--unit" "-s,--hasUnitSub" \
    "-a,--attributes" "-n,--namesrvAddr" "--json"; do
    check_out "help updateTopic shows $o" "^ *$o"
done
run "$mqadmin" help consumerProgress
check_out "help consumerProgress shows -g -t -s" "-g,--groupName.*"
check_out "help consumerProgress shows -s" "-s,--showClientIP"
run "$mqadmin" help clusterList
check_out "help clusterList shows -m" "-m,--moreStats"
check_out "help clusterList shows -i" "-i,--interval"
run "$mqadmin" topicRoute -h
check_rc "COMMAND -h shows help" 0
check_out "topicRoute -h shows -t" "-t,--topic"

run "$mqadmin" help noSuchCommand
check_rc "help of an unknown command exits 2" 2
run "$mqadmin" noSuchCommand
check_rc "unknown command exits 2" 2
check_err "unknown command is named" "noSuchCommand does not exist"

bad_options() {
    local name="$1"
    shift
    check_bad_args "bad options: $name" "$mqadmin" "$@"
}
bad_options "unknown letter" updateTopic -c DefaultCluster -t X -x
bad_options "unknown long option" topicList --bogus
bad_options "missing -t" updateTopic -c DefaultCluster
bad_options "neither -b nor -c" updateTopic -t X
bad_options "both -b and -c" updateTopic -t X -b "$addr" -c DefaultCluster
bad_options "non-numeric -r" updateTopic -t X -c DefaultCluster -r many
bad_options "non-boolean -o" updateTopic -t X -c DefaultCluster -o maybe
bad_options "malformed -a" updateTopic -t X -c DefaultCluster -a 'k=v'
bad_options "-t without its value" topicRoute -t
bad_options "deleteTopic without -c" deleteTopic -t X
bad_options "brokerStatus without -b/-c" brokerStatus
bad_options "clusterList -i 0" clusterList -i 0
bad_options "consumerProgress -s maybe" consumerProgress -g G -s maybe
bad_options "consumerConnection without -g" consumerConnection
bad_options "stray argument" topicList extra
run "$mqadmin" updateTopic -t X -x
check_err "bad option message names the option" "unknown option -x"
check_err "bad option message shows the usage" "usage: mqadmin updateTopic"

# ---- clusterList, brokerStatus -----------------------------------------------

run "$mqadmin" clusterList
check_rc "clusterList" 0
check_out "clusterList header" "#Cluster Name +#Broker Name +#BID +#Addr"
check_out "clusterList lists the broker" "^DefaultCluster +broker-a +0 +$addr +V4_9_8"
run "$mqadmin" clusterList -m
check_rc "clusterList -m" 0
check_out "clusterList -m header" "#InTotalYest +#OutTotalYest +#InTotalToday +#OutTotalToday"
check_out "clusterList -m lists the broker" "^DefaultCluster +broker-a +[0-9]+"
run "$mqadmin" clusterList -c DefaultCluster --json
check_rc "clusterList --json" 0
check_json "clusterList --json has the broker" \
    "j['clusters'][0]['clusterName']=='DefaultCluster' and j['clusters'][0]['brokers'][0]['addr']=='$addr' and j['clusters'][0]['brokers'][0]['reachable']"
run timeout 3.5 "$mqadmin" clusterList -i 1 --json
if [ "$(printf '%s\n' "$out" | grep -c '"clusters"')" -ge 2 ]; then
    pass "clusterList -i 1 prints again every second"
else
    fail "clusterList -i 1 prints again every second"
fi
run "$mqadmin" clusterList -c NoSuchCluster
check_rc "clusterList of an unknown cluster exits 1" 1

run "$mqadmin" brokerStatus -b "$addr"
check_rc "brokerStatus -b" 0
check_out "brokerStatus shows the version" "^brokerVersionDesc +: V4_9_8"
check_out "brokerStatus shows put counters" "^msgPutTotalTodayNow +: [0-9]+"
run "$mqadmin" brokerStatus -c DefaultCluster
check_rc "brokerStatus -c" 0
check_out "brokerStatus -c prefixes the address" "^$addr +brokerVersionDesc +: V4_9_8"
run "$mqadmin" brokerStatus -b "$addr" --json
check_json "brokerStatus --json" \
    "j['brokers'][0]['brokerAddr']=='$addr' and j['brokers'][0]['table']['brokerVersionDesc']=='V4_9_8'"
run "$mqadmin" brokerStatus -b 127.0.0.1:1
check_rc "brokerStatus of an unreachable broker exits 1" 1

# ---- updateTopic, topicRoute, topicList -------------------------------------

run "$mqadmin" updateTopic -c DefaultCluster -t AdminT -r 4 -w 4
check_rc "updateTopic -c" 0
check_out "updateTopic -c reports the broker" "^create topic to $addr success\.$"
check_out "updateTopic prints the config" \
    "^TopicConfig \[topicName=AdminT, readQueueNums=4, writeQueueNums=4, perm=RW-, topicFilterType=SINGLE_TAG, topicSysFlag=0, order=false"

# updateTopic returns once the name server routes the topic: no polling here.
run "$mqadmin" topicRoute -t AdminT --json
check_rc "topicRoute right after updateTopic" 0
check_json "the route shows the broker right after updateTopic" \
    "j['brokerDatas'][0]['brokerAddrs']['0']=='$addr'"
check_json "topicRoute --json queue counts" \
    "j['queueDatas'][0]['readQueueNums']==4 and j['queueDatas'][0]['writeQueueNums']==4 and j['queueDatas'][0]['perm']==6 and j['queueDatas'][0]['brokerName']=='broker-a'"
run "$mqadmin" topicRoute -t AdminT
check_rc "topicRoute" 0
check_out "topicRoute shows the broker address" "\"0\": \"$addr\""
check_out "topicRoute shows the cluster" "\"cluster\": \"DefaultCluster\""
run "$mqadmin" topicRoute -t AdminT -l
check_rc "topicRoute -l" 0
check_out "topicRoute -l row" "^DefaultCluster +broker-a +\{0=$addr\} +4 +4 +6"
check_out "topicRoute -l total" "^Total: +1 +4 +4"

run "$mqadmin" updateTopic -b "$addr" -t AdminT2 --json
check_rc "updateTopic -b --json" 0
check_json "updateTopic --json defaults r=w=8 p=6" \
    "j['created']==['$addr'] and j['routed'] and j['topicConfig']['readQueueNums']==8 and j['topicConfig']['writeQueueNums']==8 and j['topicConfig']['perm']==6"
run "$mqadmin" updateTopic -b "$addr" -t AdminT3 -p 4 -o false -u false -s false -a '+k=v'
check_rc "updateTopic -b with every option" 0
check_out "updateTopic -b reports the broker" "^create topic to $addr success\.$"
check_out "updateTopic shows perm R--" "perm=R--"
run "$mqadmin" updateTopic -c DefaultCluster -t AdminT3 -r 2 -w 2 -p 6
check_rc "updateTopic changes an existing topic" 0
run "$mqadmin" topicRoute -t AdminT3 --json
check_json "the route shows the changed counts at once" \
    "j['queueDatas'][0]['readQueueNums']==2 and j['queueDatas'][0]['writeQueueNums']==2 and j['queueDatas'][0]['perm']==6"

run "$mqadmin" topicList --json
check_json "topicList --json has the new topics" "'AdminT2' in j['topicList'] and 'AdminT3' in j['topicList']"
run "$mqadmin" topicList
check_rc "topicList" 0
check_out "topicList lists AdminT" "^AdminT$"
run "$mqadmin" topicList -c
check_rc "topicList -c" 0
check_out "topicList -c header" "#Cluster Name +#Topic +#Consumer Group"
check_out "topicList -c row" "^DefaultCluster +AdminT "
run "$mqadmin" topicList -c --json
check_json "topicList -c --json" \
    "any(t['topic']=='AdminT' and t['clusterName']=='DefaultCluster' for t in j['topics'])"

# ---- topicStatus after producing -------------------------------------------

run "$produce" -n "$NAMESRV_ADDR" -t AdminT -c 10
if [ "$rc" -eq 0 ] && [ "$(printf '%s\n' "$out" | grep -c '^SEND_OK')" -eq 10 ]; then
    pass "lsmq-produce sent 10 messages"
else
    fail "lsmq-produce sent 10 messages"
fi
run "$mqadmin" topicStatus -t AdminT
check_rc "topicStatus" 0
check_out "topicStatus header" "#Broker Name +#QID +#Min Offset +#Max Offset +#Last Updated"
total="$(printf '%s\n' "$out" | awk '$1=="broker-a" {s+=$4} END {print s+0}')"
if [ "$total" -eq 10 ]; then pass "topicStatus max offsets add up to 10"; else fail "topicStatus max offsets add up to 10 (got $total)"; fi
check_out "topicStatus shows a store time" "^broker-a +[0-9]+ +0 +[0-9]+ +[0-9]{4}-[0-9]{2}-[0-9]{2} "
check_out "topicStatus shows the put TPS" "^Topic Put TPS: "
run "$mqadmin" topicStatus -t AdminT --json
check_json "topicStatus --json: 4 queues, 10 messages" \
    "len(j['queues'])==4 and sum(q['maxOffset'] for q in j['queues'])==10 and all(q['lastUpdateTimestamp']>0 for q in j['queues'] if q['maxOffset']>0)"
run "$mqadmin" topicStatus -t AdminT -c DefaultCluster --json
check_json "topicStatus -c --json" "sum(q['maxOffset'] for q in j['queues'])==10"

# ---- consumerProgress after consuming --------------------------------------

run "$consume" -n "$NAMESRV_ADDR" -t AdminT -g AdminG --from first --count 10 --timeout 30
if [ "$rc" -eq 0 ] && [ "$(printf '%s\n' "$out" | grep -c .)" -ge 10 ]; then
    pass "lsmq-consume received 10 messages"
else
    fail "lsmq-consume received 10 messages"
fi
if wait_json "sum(q['consumerOffset'] for q in j['queues'])==10 and j['diffTotal']==0" \
    "$mqadmin" consumerProgress -g AdminG --json; then
    pass "consumerProgress --json: offsets committed, nothing behind"
else
    fail "consumerProgress --json: offsets committed, nothing behind"
fi
check_json "consumerProgress --json queue fields" \
    "all(q['topic']=='AdminT' and q['brokerName']=='broker-a' and q['brokerOffset']==q['consumerOffset'] for q in j['queues'])"
run "$mqadmin" consumerProgress -g AdminG
check_rc "consumerProgress -g" 0
check_out "consumerProgress header" "#Topic +#Broker Name +#QID +#Broker Offset +#Consumer Offset +#Diff +#Inflight +#LastTime"
check_out "consumerProgress row" "^AdminT +broker-a +[0-3] +[0-9]+ +[0-9]+ +0 +"
check_out "consumerProgress diff total" "^Consume Diff Total: 0$"
run "$mqadmin" consumerProgress -g AdminG -t AdminT --json
check_json "consumerProgress -t --json" "len(j['queues'])==4 and j['diffTotal']==0"
run "$mqadmin" consumerProgress -g AdminG -s true
check_rc "consumerProgress -s true" 0
check_out "consumerProgress -s shows the client IP column" "#Client IP"
# The consumer has left the group (it unregisters on exit).
if wait_json "any(g['group']=='AdminG' and g['diffTotal']==0 and g['count']==0 for g in j['groups'])" \
    "$mqadmin" consumerProgress --json; then
    pass "consumerProgress --json summary"
else
    fail "consumerProgress --json summary"
fi
run "$mqadmin" consumerProgress
check_rc "consumerProgress without -g" 0
check_out "consumerProgress summary header" "#Group +#Count +#Version +#Type +#Model +#TPS +#Diff Total"
check_out "consumerProgress summary lists the group" "^AdminG +0 +OFFLINE"
run "$mqadmin" consumerProgress -g NoSuchGroup
check_rc "consumerProgress of a group without offsets exits 1" 1

# ---- consumerConnection with a live consumer -------------------------------

"$consume" -n "$NAMESRV_ADDR" -t AdminT -g AdminLive --timeout 20 >"$tmp/live.out" 2>&1 &
consumer_pid=$!
if wait_json "len(j['connections'])==1" "$mqadmin" consumerConnection -g AdminLive --json; then
    pass "consumerConnection --json sees the live consumer"
else
    fail "consumerConnection --json sees the live consumer"
fi
check_json "consumerConnection --json fields" \
    "j['consumeType']=='CONSUME_PASSIVELY' and j['messageModel']=='CLUSTERING' and any(s['topic']=='AdminT' and s['subString']=='*' for s in j['subscriptions']) and j['connections'][0]['language']!=''"
run "$mqadmin" consumerConnection -g AdminLive
check_rc "consumerConnection" 0
check_out "consumerConnection header" "#ClientId +#ClientAddr +#Language +#Version"
check_out "consumerConnection subscription" "^AdminT +\*$"
check_out "consumerConnection consume type" "^ConsumeType: CONSUME_PASSIVELY$"
check_out "consumerConnection message model" "^MessageModel: CLUSTERING$"
run "$mqadmin" consumerConnection -g AdminLive -b "$addr"
check_rc "consumerConnection -b" 0
run "$mqadmin" consumerProgress
check_out "consumerProgress summary shows the live group online" "^AdminLive +1 +V[0-9_]+ +PUSH +CLUSTERING"
kill -TERM "$consumer_pid" 2>/dev/null
wait "$consumer_pid" 2>/dev/null
consumer_pid=""

# ---- refusals: exit 1 with the server's code and remark --------------------

run "$mqadmin" topicRoute -t NoSuchTopic
check_rc "topicRoute of an unknown topic exits 1" 1
check_err "topicRoute error has the code" "CODE: 17"
check_err "topicRoute error has the remark" "No topic route info in name server for the topic: NoSuchTopic"
run "$mqadmin" topicStatus -t NoSuchTopic
check_rc "topicStatus of an unknown topic exits 1" 1
check_err "topicStatus error has the name server's remark" "CODE: 17 .*NoSuchTopic"
run "$mqadmin" topicStatus -t NoSuchTopic -c DefaultCluster
check_rc "topicStatus -c of an unknown topic exits 1" 1
check_err "topicStatus -c error has the broker's remark" "CODE: 17  DESC: topic\[NoSuchTopic\] not exist"
run "$mqadmin" updateTopic -b "$addr" -t TBW102
check_rc "updateTopic of a system topic exits 1" 1
check_err "updateTopic refusal has the broker's remark" "CODE: 29  DESC: The topic\[TBW102\] is conflict with system topic"
run "$mqadmin" updateTopic -b "$addr" -t AdminBad -p 9
check_rc "updateTopic with perm 9 exits 1" 1
check_err "updateTopic perm refusal" "CODE: 29"
run "$mqadmin" consumerConnection -g NoSuchGroup -b "$addr"
check_rc "consumerConnection of an offline group exits 1" 1
check_err "consumerConnection refusal" "CODE: 206  DESC: the consumer group\[NoSuchGroup\] not online"
run "$mqadmin" updateTopic -c NoSuchCluster -t AdminX
check_rc "updateTopic on an unknown cluster exits 1" 1
check_err "unknown cluster is named" "NoSuchCluster"
run "$mqadmin" topicList -n 127.0.0.1:1
check_rc "an unreachable name server exits 1" 1
run env NAMESRV_ADDR=127.0.0.1:1 "$mqadmin" topicList -n "$NAMESRV_ADDR"
check_rc "-n overrides NAMESRV_ADDR" 0
run env NAMESRV_ADDR="127.0.0.1:1;$NAMESRV_ADDR" "$mqadmin" topicList
check_rc "a name server list falls over to the next server" 0

# ---- deleteTopic --------------------------------------------------------------

run "$mqadmin" deleteTopic -t AdminT -c DefaultCluster
check_rc "deleteTopic" 0
check_out "deleteTopic from the cluster" "^delete topic \[AdminT\] from cluster \[DefaultCluster\] success\.$"
check_out "deleteTopic from the name server" "^delete topic \[AdminT\] from NameServer success\.$"
run "$mqadmin" topicList
check_no_out "topicList no longer lists AdminT" "^AdminT$"
run "$mqadmin" topicRoute -t AdminT
check_rc "topicRoute after deleteTopic exits 1" 1
run "$mqadmin" deleteTopic -t AdminT2 -c DefaultCluster --json
check_rc "deleteTopic --json" 0
check_json "deleteTopic --json" "j['topic']=='AdminT2' and j['brokers']==['$addr']"
run "$mqadmin" topicList --json
check_json "topicList --json no longer has AdminT2" "'AdminT2' not in j['topicList'] and 'AdminT3' in j['topicList']"
# Stay deleted across the broker's next registration.
sleep 1
run "$mqadmin" topicList --json
check_json "AdminT stays deleted" "'AdminT' not in j['topicList'] and 'AdminT2' not in j['topicList']"

# ---- shutdown ---------------------------------------------------------------

stop_broker
finish
