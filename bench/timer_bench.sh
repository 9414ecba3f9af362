#!/usr/bin/env bash
# Delayed delivery (issue 12): how late timer messages (TIMER_DELIVER_MS) are
# delivered, how fast a burst of due messages moves to its queue next to the
# plain append rate, how long a store with millions of pending messages takes
# to reopen, and the same lateness schedule against upstream RocketMQ 5.x.
# Drives mqbroker through bench/mqbench (timer and produce modes); figures and
# how they were taken are in bench/RESULTS.md, "Delayed delivery (issue 12)".
#
#   bench/timer_bench.sh lateness   RATES due/s (default 1000 10000) for SECS s
#                                   (default 20), REPS runs each (default 3),
#                                   a fresh topic per run, each followed by a
#                                   plain publish-to-consume run (mqbench
#                                   latency) at the same rate; medians
#   bench/timer_bench.sh burst      the plain append rate (mqbench produce, 1 KiB,
#                                   4 async producers), then BURST_N (default
#                                   1000000) messages all due in one millisecond
#                                   while 4 synchronous producers send plain
#                                   messages: due moves/s over append/s (>= 0.7)
#   bench/timer_bench.sh reopen     REOPEN_N (default 10000000) pending 1 KiB
#                                   messages due in a day (filled in chunks; the
#                                   fill stops at REOPEN_FILL_MAX_S, default 900),
#                                   then kill -9 and restart, then stop and
#                                   restart: seconds from start to the first
#                                   acknowledged send (<= 5 s), broker RSS
#   bench/timer_bench.sh upstream   the lateness schedule alternately against
#                                   mqbroker and upstream RocketMQ (UPSTREAM_VERSION,
#                                   default 5.3.3, default timer settings: a 1 s
#                                   wheel) through tests/interop/upstream/with-upstream.sh
#   bench/timer_bench.sh all        lateness, burst, reopen, upstream
#
# Every timed message is sent LEAD_MS (default 2000) before its due time; the
# client and the brokers run on this machine and share its clock, so a
# delivery before the due time counts as early (must be 0 for mqbroker).
#
# Environment:
#   BUILD_DIR   CMake build directory (default build/release; built as Release)
#   LOG_DIR     logs and summary (default $BUILD_DIR/bench-logs/timer-<time>-<mode>)
#   WORK_DIR    parent of the scratch directory (default ${TMPDIR:-/tmp})
#   RATES SECS REPS LEAD_MS BURST_N REOPEN_N REOPEN_FILL_MAX_S UPSTREAM_VERSION
#   KEEP=1      keep the scratch directory (stores)
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
. bench/bench_lib.sh
what=${1:-}
case "$what" in
lateness | burst | reopen | upstream | all | _upstream_inner) ;;
-h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
    ;;
*)
    echo "usage: bench/timer_bench.sh lateness|burst|reopen|upstream|all" >&2
    exit 2
    ;;
esac

rates=${RATES:-1000 10000}
secs=${SECS:-20}
reps=${REPS:-3}
lead_ms=${LEAD_MS:-2000}
burst_n=${BURST_N:-1000000}
reopen_n=${REOPEN_N:-10000000}
reopen_fill_max_s=${REOPEN_FILL_MAX_S:-900}
upstream_version=${UPSTREAM_VERSION:-5.3.3}

note() { printf 'timer_bench: %s\n' "$*" >&2; }

# ---- Build (not in the inner upstream run: its parent built) ---------------

if [ "$what" != _upstream_inner ]; then
    log_dirs timer "$what"
    : >"$summary"
    note "building Release in $build_dir"
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DLSMQ_TESTS=OFF \
        >"$log_dir/cmake.log" 2>&1 || { cat "$log_dir/cmake.log" >&2; exit 1; }
    cmake --build "$build_dir" -j2 --target mqbroker mqbench mqadmin >>"$log_dir/cmake.log" 2>&1 ||
        { tail -40 "$log_dir/cmake.log" >&2; exit 1; }
    export TB_BUILD=$(cd "$build_dir" && pwd) TB_LOG_DIR=$log_dir TB_SUMMARY=$summary
fi
mqbroker=$TB_BUILD/server/mqbroker
mqbench=$TB_BUILD/bench/mqbench
mqadmin=$TB_BUILD/tools/mqadmin
log_dir=$TB_LOG_DIR
summary=$TB_SUMMARY
say() { printf '%s\n' "$*" | tee -a "$summary"; }

# ---- Scratch directory and the broker --------------------------------------

work=$(mktemp -d "${WORK_DIR:-${TMPDIR:-/tmp}}/lsmq-timer-bench.XXXXXX")
broker_pid=
server_pids=
cleanup() {
    [ -z "$broker_pid" ] || stop_pid "$broker_pid"
    if [ "${KEEP:-0}" = 1 ]; then note "scratch kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port PORT SECONDS: until something listens on 127.0.0.1:PORT.
wait_port() {
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        if (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

# start_broker [DIR]: mqbroker (ASYNC_FLUSH, embedded name server) on DIR
# (default a fresh one; ports kept for a restart on the same DIR).
start_broker() {
    if [ -z "${1:-}" ]; then
        broker_dir=$work/broker-$(date +%s%N)
        mkdir -p "$broker_dir"
        port=$(free_port)
        ns_port=$(free_port)
        ha_port=$(free_port)
    fi
    t_start=$(date +%s%N)
    "$mqbroker" --embedded-namesrv --embeddedNamesrvPort="$ns_port" --listenPort="$port" \
        --haListenPort="$ha_port" --brokerIP1=127.0.0.1 --namesrvAddr="127.0.0.1:$ns_port" \
        --storePathRootDir="$broker_dir/data" >>"$log_dir/broker.log" 2>&1 &
    broker_pid=$!
    server_pids=$broker_pid
    ns=127.0.0.1:$ns_port
}

# serving SECONDS: until a plain send to topic "serving" is acknowledged; sets
# serve_s (seconds since start_broker) and listen_s (port open).
serving() {
    local i
    wait_port "$port" "$1" || { note "mqbroker did not listen; see $log_dir/broker.log"; exit 1; }
    listen_s=$(awk -v a="$t_start" -v b="$(date +%s%N)" \
        'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    for ((i = 0; i < $1 * 10; i++)); do
        if "$mqbench" produce -n "$ns" -t serving --count 1 --warmup 0 --timeout 1000 \
            >/dev/null 2>>"$log_dir/serving.err"; then
            serve_s=$(awk -v a="$t_start" -v b="$(date +%s%N)" \
                'BEGIN { printf "%.2f", (b - a) / 1e9 }')
            return 0
        fi
        sleep 0.1
    done
    note "no acknowledged send within $1 s"
    exit 1
}

stop_broker() {
    stop_pid "$broker_pid"
    broker_pid=
}

create_topic() { # NAMESRV TOPIC
    "$mqadmin" updateTopic -n "$1" -c DefaultCluster -t "$2" -r 8 -w 8 \
        >>"$log_dir/mqadmin.log" 2>&1 ||
        note "mqadmin updateTopic $2 failed; the first send creates it"
}

# pending NAMESRV: the broker's pending delayed messages (mqadmin timerStatus).
pending() {
    "$mqadmin" timerStatus -n "$1" 2>>"$log_dir/mqadmin.log" |
        awk '/\(all topics\)/ { p = $NF } END { print p == "" ? "?" : p }'
}

rss_mb() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
hwm_mb() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

# cpu_ticks PIDS: utime + stime of the processes (space-separated), in clock ticks.
cpu_ticks() {
    local p s=0 t
    for p in $1; do
        t=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        s=$((s + t))
    done
    echo "$s"
}

# listener_pids PORT...: the processes listening on those local ports (upstream's JVMs).
listener_pids() {
    local port
    for port in "$@"; do
        ss -Hltnp "( sport = :$port )" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1
    done | sort -u | tr '\n' ' '
}

# run_timer NAME NAMESRV ARGS...: one mqbench timer run; $out = its result line
# with load=<1-min load average before it>, broker_cpu_pct (the processes in
# $server_pids: broker, name server) and others_ext_pct (the machine minus
# them and the client: what other people's processes took, 100 = one core).
run_timer() { run_mq timer "$@"; }

# run_mq MODE NAME NAMESRV ARGS...: the same for any mqbench mode.
run_mq() {
    local mode=$1 name=$2 nsrv=$3 load m0 b0 t0 m1 b1 t1 line
    shift 3
    load=$(cut -d' ' -f1 /proc/loadavg)
    note "$name: mqbench $mode $*"
    m0=$(machine_ticks) b0=$(cpu_ticks "$server_pids") t0=$(date +%s%N)
    "$mqbench" "$mode" -n "$nsrv" --label "$name" "$@" \
        >"$log_dir/$name.out" 2>"$log_dir/$name.err" ||
        note "$name: exit status $? (see $log_dir/$name.err)"
    m1=$(machine_ticks) b1=$(cpu_ticks "$server_pids") t1=$(date +%s%N)
    line=$(grep '^result ' "$log_dir/$name.out" || echo "result label=$name failed=1")
    out="$line load=$load $(awk -v dm=$((m1 - m0)) -v db=$((b1 - b0)) \
        -v s="$(((t1 - t0) / 1000000))" \
        -v hz="$(getconf CLK_TCK)" -v c="$(field "$line" cpu_pct)" 'BEGIN {
        w = s / 1000 * hz; b = 100 * db / w; o = 100 * dm / w - b - c
        printf "broker_cpu_pct=%.0f others_ext_pct=%.0f", b, o < 0 ? 0 : o }')"
    printf '%s\n' "$out" >>"$log_dir/results.txt"
}

# med KEY LINES...: the median of KEY over the result lines.
med() {
    local key=$1 l
    shift
    for l in "$@"; do field "$l" "$key"; done | grep -v '^$' | median
}
sum() {
    local key=$1 l
    shift
    for l in "$@"; do field "$l" "$key"; done | awk '{ s += $1 } END { print s + 0 }'
}

lateness_row() { # WHO RATE LINES...
    local who=$1 rate=$2
    shift 2
    say "| $who | $rate | $# | $(med p50_ms "$@") | $(med p90_ms "$@") | $(med p99_ms "$@") |" \
        "$(med max_ms "$@") | $(med min_ms "$@") | $(sum early "$@") | $(sum lost "$@") |" \
        "$(sum dups "$@") | $(med deliver_per_s "$@") | $(med broker_cpu_pct "$@") |" \
        "$(med others_ext_pct "$@") | $(med load "$@") |"
}
lateness_head() {
    say "| broker | due/s | runs | p50 ms | p90 ms | p99 ms | max ms | min ms | early | lost |" \
        "dups | delivered/s | broker CPU % | others' CPU % | load |"
    say "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
}

# ---- Modes -----------------------------------------------------------------

# Each timer run is followed by a plain publish-to-consume run at the same
# rate (mqbench latency, its own topic): what delivery costs without a timer
# on the machine as it is at that moment.
mode_lateness() {
    local rate i lines plain
    say "## lateness: $secs s per run, $reps runs per rate, lead $lead_ms ms ($(date -u +%FT%TZ))"
    start_broker
    serving 30
    lateness_head
    for rate in $rates; do
        lines=() plain=()
        for ((i = 1; i <= reps; i++)); do
            create_topic "$ns" "lat-$rate-$i"
            run_timer "lsmq-lat-$rate-$i" "$ns" -t "lat-$rate-$i" --rate "$rate" \
                --seconds "$secs" --lead-ms "$lead_ms"
            lines+=("$out")
            create_topic "$ns" "plain-$rate-$i"
            run_mq latency "lsmq-plain-$rate-$i" "$ns" -t "plain-$rate-$i" --rate "$rate" \
                --seconds "$secs"
            plain+=("$out")
        done
        lateness_row mqbroker "$rate" "${lines[@]}"
        say "| plain send to receive, same rate | $rate | $reps | $(med p50_ms "${plain[@]}") | |" \
            "$(med p99_ms "${plain[@]}") | $(med max_ms "${plain[@]}") | | |" \
            "$(sum lost "${plain[@]}")" \
            "| $(sum dups "${plain[@]}") | | $(med broker_cpu_pct "${plain[@]}") |" \
            "$(med others_ext_pct "${plain[@]}") | $(med load "${plain[@]}") |"
    done
    stop_broker
}

# sample_offsets NAMESRV TOPIC FILE: every 50 ms until stopped, "<ns since
# epoch> <sum of the topic's max offsets>" to FILE: the broker's side of the
# due moves, whatever the consumer's speed.
sample_offsets() {
    local s
    while :; do
        s=$("$mqadmin" topicStatus -n "$1" -t "$2" 2>/dev/null |
            awk 'NR > 1 { s += $4 } END { print s + 0 }')
        echo "$(date +%s%N) $s" >>"$3"
        sleep 0.05
    done
}

# moved_rate FILE: "<moves/s> <seconds> <moves>" from the first sample that
# jumped by 500 or more (the first move group; warm-up sends add a few per
# sample) to the first at the final sum.
moved_rate() {
    awk '{ t[NR] = $1; v[NR] = $2 } END {
        for (i = 2; i <= NR; i++) {
            if (!t0 && v[i] - v[i - 1] >= 500) { t0 = t[i - 1]; s0 = v[i - 1] }
            if (t0 && !t1 && v[i] >= v[NR]) t1 = t[i]
        }
        if (t0 && t1 > t0)
            printf "%.0f %.2f %d", (v[NR] - s0) / ((t1 - t0) / 1e9), (t1 - t0) / 1e9, v[NR] - s0
        else print "? ? ?" }' "$1"
}

mode_burst() {
    local append timed lead line ratio sampler moved m_rate m_secs m_n
    say "## burst: $burst_n due in one millisecond ($(date -u +%FT%TZ))"
    start_broker
    serving 30
    create_topic "$ns" plain-rate
    create_topic "$ns" timed-rate
    append=$("$mqbench" produce -n "$ns" -t plain-rate --producers 4 --async --window 64 \
        --seconds 10 --label append 2>>"$log_dir/produce.err" | tee -a "$log_dir/results.txt")
    timed=$("$mqbench" produce -n "$ns" -t timed-rate --producers 4 --async --window 64 \
        --seconds 10 --deliver-in 86400000 --label timed-append 2>>"$log_dir/produce.err" |
        tee -a "$log_dir/results.txt")
    # Long enough to send them all at half the timed append rate.
    lead=$(awk -v n="$burst_n" -v r="$(field "$timed" msgs_per_s)" \
        'BEGIN { printf "%.0f", (n / (r > 0 ? r : 1000) * 2 + 10) * 1000 }')
    create_topic "$ns" burst
    create_topic "$ns" burst-plain
    sample_offsets "$ns" burst "$log_dir/burst-offsets.txt" &
    sampler=$!
    run_timer lsmq-burst "$ns" -t burst --burst "$burst_n" --plain-topic burst-plain \
        --lead-ms "$lead" --drain-s 300 --timeout 30000
    line=$out
    f() { field "$line" "$1"; }
    stop_pid "$sampler"
    moved=$(moved_rate "$log_dir/burst-offsets.txt")
    ratio=$(awk -v m="$(field "$line" moves_per_s)" -v a="$(field "$append" msgs_per_s)" \
        'BEGIN { printf "%.2f", (a > 0 ? m / a : 0) }')
    say "| figure | value |"
    say "|---|---|"
    say "| plain append, 4 async producers x 64, 1 KiB (msgs/s) | $(field "$append" msgs_per_s) |"
    say "| timed append (due in a day), same producers (msgs/s) | $(field "$timed" msgs_per_s) |"
    say "| burst: messages, all due at one ms | $(f burst) (received $(f received)," \
        "lost $(f lost), early $(f early), dups $(f dups)) |"
    say "| burst sent before due | $(f sent_before_due) (margin $(f sent_margin_s) s) |"
    say "| due moves/s (first to last delivery, $(f move_secs) s) | $(f moves_per_s) |"
    say "| due moves / plain append (target >= 0.7) | $ratio |"
    read -r m_rate m_secs m_n <<<"$moved"
    say "| broker side: queue offsets moved/s (50 ms samples; $m_n in $m_secs s) | $m_rate |"
    say "| broker side moves / plain append | $(awk -v m="$m_rate" \
        -v a="$(field "$append" msgs_per_s)" 'BEGIN { printf "%.2f", (a > 0 ? m / a : 0) }') |"
    say "| first / median / last delivery after due (ms) |" \
        "$(f min_ms) / $(f p50_ms) / $(f max_ms) |"
    say "| plain sync sends/s before / during the burst ($(f plain_producers) producers) |" \
        "$(f plain_before_per_s) / $(f plain_during_per_s) |"
    say "| plain send p99 ms before / during |" \
        "$(f plain_before_p99_ms) / $(f plain_during_p99_ms) |"
    say "| broker CPU % / others' CPU % (burst run) / load |" \
        "$(f broker_cpu_pct) / $(f others_ext_pct) / $(f load) |"
    stop_broker
}

mode_reopen() {
    local filled=0 chunk t0 line rss_fill kill_serve kill_listen stop_serve stop_listen
    say "## reopen: $reopen_n pending 1 KiB due in a day ($(date -u +%FT%TZ))"
    start_broker
    serving 30
    create_topic "$ns" pending
    t0=$SECONDS
    while [ "$filled" -lt "$reopen_n" ] && [ $((SECONDS - t0)) -lt "$reopen_fill_max_s" ]; do
        chunk=$((reopen_n - filled < 500000 ? reopen_n - filled : 500000))
        line=$("$mqbench" produce -n "$ns" -t pending --producers 4 --async --window 64 \
            --count "$chunk" --deliver-in 86400000 --label fill 2>>"$log_dir/produce.err" || true)
        printf '%s\n' "$line" >>"$log_dir/results.txt"
        filled=$((filled + $(field "$line" ops)))
        note "filled $filled pending ($(field "$line" msgs_per_s) msgs/s," \
            "RSS $(rss_mb "$broker_pid") MB)"
    done
    local fill_s=$((SECONDS - t0)) pend_fill pend_kill pend_stop
    sleep 5
    pend_fill=$(pending "$ns")
    rss_fill=$(rss_mb "$broker_pid")
    local hwm_fill
    hwm_fill=$(hwm_mb "$broker_pid")
    local disk wal
    disk=$(du -sm "$broker_dir/data" | cut -f1)
    # The write-ahead log a crash leaves to replay (RocksDB's *.log files).
    wal=$(find "$broker_dir/data" -name '*.log' -printf '%s\n' |
        awk '{ s += $1 } END { printf "%.0f", s / 1048576 }')
    kill -KILL "$broker_pid"
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=
    start_broker "$broker_dir"
    serving 600
    kill_serve=$serve_s kill_listen=$listen_s
    pend_kill=$(pending "$ns")
    sleep 5
    local rss_kill
    rss_kill=$(rss_mb "$broker_pid")
    stop_broker
    start_broker "$broker_dir"
    serving 600
    stop_serve=$serve_s stop_listen=$listen_s
    pend_stop=$(pending "$ns")
    sleep 5
    local rss_stop
    rss_stop=$(rss_mb "$broker_pid")
    say "| figure | value |"
    say "|---|---|"
    say "| pending messages filled (1 KiB, due in a day) | $filled of $reopen_n in $fill_s s |"
    say "| pending (mqadmin timerStatus): after the fill / the kill -9 restart /" \
        "the clean restart | $pend_fill / $pend_kill / $pend_stop |"
    say "| store on disk (MB); write-ahead log at the kill (MB) | $disk; $wal |"
    say "| broker RSS after the fill (MB; peak during it) | $rss_fill ($hwm_fill) |"
    say "| after kill -9: start to port open / first acknowledged send (s, target <= 5) |" \
        "$kill_listen / $kill_serve |"
    say "| RSS 5 s after that restart (MB) | $rss_kill |"
    say "| after a clean stop: start to port open / first acknowledged send (s) |" \
        "$stop_listen / $stop_serve |"
    say "| RSS 5 s after that restart (MB) | $rss_stop |"
    say "| load average at the end | $(loadavg) |"
    stop_broker
}

# Inside with-upstream.sh: mqbroker (started by the parent, LSMQ_NS) and
# upstream (NAMESRV_ADDR) take turns on the same schedule.
mode_upstream_inner() {
    local rate i l_lines u_lines name
    for rate in $rates; do
        l_lines=() u_lines=()
        for ((i = 1; i <= reps; i++)); do
            name=up-$rate-$i
            create_topic "$LSMQ_NS" "$name"
            server_pids=${LSMQ_PID:-}
            run_timer "lsmq-$name" "$LSMQ_NS" -t "$name" --rate "$rate" --seconds "$secs" \
                --lead-ms "$lead_ms"
            l_lines+=("$out")
            create_topic "$NAMESRV_ADDR" "$name"
            server_pids=$(listener_pids "${NAMESRV_ADDR##*:}" "${BROKER_ADDR##*:}")
            run_timer "upstream-$name" "$NAMESRV_ADDR" -t "$name" --rate "$rate" \
                --seconds "$secs" --lead-ms "$lead_ms"
            u_lines+=("$out")
        done
        lateness_row mqbroker "$rate" "${l_lines[@]}"
        lateness_row "upstream $UPSTREAM_VERSION" "$rate" "${u_lines[@]}"
    done
}

mode_upstream() {
    say "## upstream: $secs s per run, $reps alternating runs per rate, lead $lead_ms ms" \
        "($(date -u +%FT%TZ))"
    start_broker
    serving 30
    lateness_head
    LSMQ_NS=$ns LSMQ_PID=$broker_pid RATES=$rates SECS=$secs REPS=$reps LEAD_MS=$lead_ms \
        UPSTREAM_VERSION=$upstream_version tests/interop/upstream/with-upstream.sh \
        "$root/bench/timer_bench.sh" _upstream_inner \
        2>>"$log_dir/upstream.err" || note "the upstream runs failed (see $log_dir/upstream.err)"
    stop_broker
}

[ "$what" = _upstream_inner ] ||
    say "machine: $(nproc) cores, load $(loadavg)," \
        "$(git -C "$root" log -1 --format=%h 2>/dev/null || echo '?')"
case "$what" in
lateness) mode_lateness ;;
burst) mode_burst ;;
reopen) mode_reopen ;;
upstream) mode_upstream ;;
_upstream_inner) mode_upstream_inner ;;
all)
    mode_lateness
    mode_burst
    mode_upstream
    mode_reopen
    ;;
esac
note "summary in $summary"
