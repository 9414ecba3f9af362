#!/usr/bin/env bash
# End-to-end test of mqadmin's commands for delayed messages against a real
# mqbroker (messageDelayLevel "1s 2s 3s 30s"): lsmq-produce sends messages
# at level 4 (30 s, pending for the whole test) and timerStatus counts them
# per topic and in all, in text and --json form, with -t, -c and -b
# (brokerStatus shows the total as delayedMessagesPending);
# queryMsgById finds a pending one by the offset id its send returned, shown
# in SCHEDULE_TOPIC_XXXX with REAL_TOPIC; resendDeadLetter sends a message
# of a %DLQ% topic on to another topic at once (-d), and refuses one without
# RETRY_TOPIC when no -d is given; updateSubGroup sends a group's config
# with its groupRetryPolicy (the policy's effect: test_e2e_delay); bad input
# exits 2. Finally stops the broker with SIGTERM and requires a clean exit.
#
#   tests/e2e/mqadmin_delay_test.sh BUILD_DIR
#
# Prints one line per check and a final "N passed, M failed"; exits 0 only
# when nothing failed.
set -uo pipefail

build="${1:?usage: mqadmin_delay_test.sh BUILD_DIR}"
. "$(dirname "$0")/lib.sh"

require_bins "$mqadmin" "$produce" "$consume" "$broker_bin"

trap 'kill_running "$pid"' EXIT
start_broker mqadmin-delay "--messageDelayLevel=1s 2s 3s 30s"
export NAMESRV_ADDR="$ns"

if wait_json "any(b['addr']=='$addr' for c in j['clusters'] for b in c['brokers'])" \
    "$mqadmin" clusterList --json; then
    pass "the broker registers with the name server"
else
    fail "the broker registers with the name server"
fi

# ---- pending counts -----------------------------------------------------------

run "$mqadmin" updateTopic -c DefaultCluster -t DQ -r 2 -w 2
check_rc "updateTopic DQ" 0
run "$produce" -n "$NAMESRV_ADDR" -t DQ --keys later -c 3 --delay 4
check_count "3 delayed messages sent" "^SEND_OK" 3
offset_id="$(sed -n 's/^SEND_OK .*offsetMsgId=\([^ ]*\).*/\1/p' <<<"$out" | head -1)"

run "$mqadmin" timerStatus -t DQ
check_rc "timerStatus -t DQ" 0
check_out "timerStatus: the header line" "^#Broker +#Topic +#Pending"
check_out "timerStatus: DQ has 3 pending" "^$addr +DQ +3$"
check_out "timerStatus: the broker's total" "^$addr +\(all topics\) +3$"

run "$mqadmin" timerStatus --json
check_rc "timerStatus --json (the cluster's brokers)" 0
check_json "timerStatus --json: counts per broker and topic" \
    "j[0]['broker']=='$addr' and j[0]['pendingTotal']==3 and \
j[0]['topics']==[{'topic':'DQ','pending':3}]"

run "$mqadmin" brokerStatus -b "$addr"
check_rc "brokerStatus" 0
check_out "brokerStatus counts the pending messages" "^delayedMessagesPending +: 3$"

run "$mqadmin" timerStatus -b "$addr" -t NoSuchTopic
check_rc "timerStatus of an unknown topic is refused" 1
check_err "the refusal names the topic" "topic\[NoSuchTopic\] not exist"

# ---- a pending message by its offset id ----------------------------------------

run "$mqadmin" queryMsgById -t DQ -i "$offset_id"
check_rc "queryMsgById of a pending message" 0
check_out "shown in SCHEDULE_TOPIC_XXXX while pending" "SCHEDULE_TOPIC_XXXX"
check_out "with the topic it goes to" "REAL_TOPIC=DQ"

# ---- dead letters back to a topic --------------------------------------------

run "$mqadmin" updateTopic -c DefaultCluster -t DEST -r 1 -w 1
check_rc "updateTopic DEST" 0
run "$produce" -n "$NAMESRV_ADDR" -t "%DLQ%g_dead" -c 1
check_count "a message in a dead-letter topic" "^SEND_OK" 1
dead_id="$(sed -n 's/^SEND_OK .*offsetMsgId=\([^ ]*\).*/\1/p' <<<"$out")"
uniq_id="$(sed -n 's/^SEND_OK .*msgId=\([^ ]*\) .*/\1/p' <<<"$out")"

run "$mqadmin" resendDeadLetter -t "%DLQ%g_dead" -i "$dead_id"
check_rc "resendDeadLetter without RETRY_TOPIC or -d fails" 1
check_err "it says what to give" "has no RETRY_TOPIC .*give -d"

run "$mqadmin" resendDeadLetter -t "%DLQ%g_dead" -i "$dead_id" -d DEST
check_rc "resendDeadLetter -d DEST" 0
check_out "it says where it went" "^resent .* to DEST: SEND_OK, offsetMsgId [0-9A-F]{32}$"
run "$consume" -n "$NAMESRV_ADDR" -t DEST -g g_dest --from first --count 1 --timeout 10
check_rc "the resent message is consumed from DEST at once" 0
check_out "with its message id" "$uniq_id"

check_bad_args "bad input: resendDeadLetter without -i" "$mqadmin" resendDeadLetter -t "%DLQ%g"
check_bad_args "bad input: resendDeadLetter with a bad id" "$mqadmin" resendDeadLetter \
    -t "%DLQ%g" -i not-an-id

# ---- a group's retry policy -------------------------------------------------------

policy='{"type":"EXPONENTIAL","exponentialRetryPolicy":{"initial":1000,"max":60000,"multiplier":3}}'
run "$mqadmin" updateSubGroup -b "$addr" -g g_pol -r 5 -p "$policy"
check_rc "updateSubGroup -p EXPONENTIAL" 0
check_out "it says so" "^create subscription group to $addr success\.$"
check_out "the config sent carries the policy and the limit" \
    '"groupName":"g_pol",.*"groupRetryPolicy":\{"exponentialRetryPolicy":\{"initial":1000,'
check_out "and the retry limit" '"retryMaxTimes":5'
custom='{"type":"CUSTOMIZED","customizedRetryPolicy":{"next":[1000,2000]}}'
run "$mqadmin" updateSubGroup -c DefaultCluster -g g_pol2 -p "$custom"
check_rc "updateSubGroup -c with a CUSTOMIZED policy" 0
check_bad_args "bad input: updateSubGroup with a policy that is not JSON" "$mqadmin" \
    updateSubGroup -b "$addr" -g g_bad -p '{type:'
check_bad_args "bad input: updateSubGroup with an unknown policy type" "$mqadmin" \
    updateSubGroup -b "$addr" -g g_bad -p '{"type":"LINEAR"}'

# ---- shutdown -----------------------------------------------------------------

stop_broker
finish
