#!/usr/bin/env bash
# For developers (not CI): validates the Go and Node.js (ali-ons) interop suites against the
# real Apache RocketMQ name server and broker (see with-upstream.sh for versions, ports and
# memory).
#
#   tests/interop/upstream/run-upstream-clients.sh [go] [node]     (default: both)
#
# ali-ons cannot create topics; unless LSMQ_CREATE_TOPIC_CMD is set, the Node.js suite creates
# them with the Go helper's admin call (UPDATE_AND_CREATE_TOPIC to the broker, 4 queues), as
# an mqadmin would. Prints each suite's lines and a final "N passed, M failed" over both;
# exits 1 if anything failed.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
suites=("$@")
[[ ${#suites[@]} -eq 0 ]] && suites=(go node)
for s in "${suites[@]}"; do
    [[ "$s" == go || "$s" == node ]] || { echo "unknown suite $s (go, node)" >&2; exit 2; }
done

# Build the Go helper before the servers start (the Node.js suite uses it too).
(cd "$here/../go" && go build -o bin/interop .) || { echo "go build failed" >&2; exit 2; }

export LSMQ_SUITES="${suites[*]}"
exec "$here/with-upstream.sh" bash -c '
    interop="$(cd "$(dirname "$0")/.." && pwd)"
    passed=0; failed=0
    for s in $LSMQ_SUITES; do
        t=$SECONDS
        echo "== $s suite against upstream $UPSTREAM_VERSION ($NAMESRV_ADDR, broker $BROKER_ADDR)"
        if [[ $s == node && -z "${LSMQ_CREATE_TOPIC_CMD:-}" ]]; then
            export LSMQ_CREATE_TOPIC_CMD="$interop/go/bin/interop -namesrv {namesrv} -create-topic {topic} -broker $BROKER_ADDR"
        fi
        out="$("$interop/$s/run.sh" "$NAMESRV_ADDR" 2>&1)"
        echo "$out"
        line="$(grep -E "^[0-9]+ passed, [0-9]+ failed$" <<<"$out" | tail -1)"
        p="${line%% passed*}"; f="${line#*passed, }"; f="${f%% failed*}"
        passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
        echo "== $s suite took $((SECONDS - t)) s"
    done
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
' "$here/with-upstream.sh"
