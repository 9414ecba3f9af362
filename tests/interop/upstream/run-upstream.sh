#!/usr/bin/env bash
# For developers (not CI): validates the Java interop suite against the real Apache RocketMQ
# name server and broker, fetched from Maven Central (with-upstream.sh starts and stops them).
#
#   tests/interop/upstream/run-upstream.sh [scenario...]
#
# Environment:
#   UPSTREAM_VERSION   rocketmq-namesrv/rocketmq-broker version, default 5.4.0; 4.9.7 and
#                      5.3.3 also run but fail batch for the 5.x client (apache/rocketmq#9416,
#                      see ../README.md); 4.9.8's name server and broker are not on Maven Central
#   NAMESRV_PORT       default 9876;  BROKER_PORT  default 10911 (the broker also takes
#                      BROKER_PORT-2 and BROKER_PORT+1)
#   KEEP=1             keep the work dir (stores, logs) even when everything passed
#   LSMQ_INTEROP_CLIENTS, LSMQ_INTEROP_TIMEOUT: passed on to tests/interop/java/run.sh
#   LSMQ_INTEROP_LOGDIR  client logs and per-run output, default the work dir's interop/
#
# All traffic stays on 127.0.0.1. 5.x binds 127.0.0.1 (but the broker's HA port, which nothing
# uses here, binds the wildcard address); 4.x has no bind setting and listens on all addresses.
# Exits with run.sh's status.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# upstream's own default ports; with-upstream.sh's differ so that both can run at once
export NAMESRV_PORT="${NAMESRV_PORT:-9876}" BROKER_PORT="${BROKER_PORT:-10911}"
exec "$here/with-upstream.sh" bash -c '
    LSMQ_INTEROP_LOGDIR="${LSMQ_INTEROP_LOGDIR:-$UPSTREAM_WORK/interop}" \
        "$(dirname "$0")/../java/run.sh" "$NAMESRV_ADDR" "$@"
' "$here/with-upstream.sh" "$@"
