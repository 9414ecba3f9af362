#!/usr/bin/env bash
# Storage benchmark of the lsmq store (engine/ + index/), with RocksDB's own
# db_bench fillseq as the ceiling. Figures and how they were taken are in
# bench/RESULTS.md.
#
#   bench/run.sh [full]          every configuration, about 10 min on 2 cores
#   bench/run.sh quick           the same matrix with small counts, about 2 min
#   bench/run.sh tuning [SIZE]   msg family: blob files vs inline values x level
#                                vs universal compaction, SIZE bytes of bodies
#                                per run (default 4G; K/M/G suffixes)
#
# Environment:
#   BENCH_DIR   where the stores go (default: a new directory under ${TMPDIR:-/tmp});
#               it is removed at the end unless KEEP=1
#   BUILD_DIR   CMake build directory (default build/release)
#   LOG_DIR     where logs and the summary go (default $BUILD_DIR/bench-logs/<time>)
#   BENCH_BIN   use this lsmq-engine-bench binary instead of building one
#   QUIET_WAIT  seconds to wait for the load average to fall under 0.5 before
#               starting (default 0): other processes on the machine move
#               every figure
#   tuning only: TUNE_QUEUES (64), TUNE_BODY (1024), TUNE_THREADS (1),
#                TUNE_WINDOW (64), TUNE_FLUSH (async); the default is the
#                broker's shape, one loop thread with many appends in flight,
#                which keeps the writer busy so that compaction shows
#
# Every figure comes from this one run: the ceilings are measured next to
# the store on the same disk, and each ratio divides two figures of the run.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
what=${1:-full}
case "$what" in
full | quick | tuning) ;;
-h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
    ;;
*)
    echo "usage: bench/run.sh [full|quick|tuning [SIZE]]" >&2
    exit 2
    ;;
esac

build_dir=${BUILD_DIR:-build/release}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
log_dir=${LOG_DIR:-$build_dir/bench-logs/$stamp-$what}
mkdir -p "$log_dir"
log_dir=$(cd "$log_dir" && pwd)
summary=$log_dir/summary.md

say() { printf '%s\n' "$*" | tee -a "$summary"; }
note() { printf '%s\n' "$*" >&2; }

# ---- Tools and build -------------------------------------------------------

if ! command -v db_bench >/dev/null || ! command -v cmake >/dev/null; then
    note "run.sh: db_bench (rocksdb-tools) or cmake missing; installing with scripts/setup.sh"
    scripts/setup.sh
fi
if [ -n "${BENCH_BIN:-}" ]; then
    bench=$BENCH_BIN
else
    note "run.sh: building Release in $build_dir"
    cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >"$log_dir/cmake.log" 2>&1 ||
        { cat "$log_dir/cmake.log" >&2; exit 1; }
    cmake --build "$build_dir" -j2 --target lsmq-engine-bench >>"$log_dir/cmake.log" 2>&1 ||
        { tail -40 "$log_dir/cmake.log" >&2; exit 1; }
    bench=$root/$build_dir/bench/lsmq-engine-bench
fi
[ -x "$bench" ] || { note "run.sh: $bench was not built"; exit 1; }

# ---- Scratch directory -----------------------------------------------------

if [ -n "${BENCH_DIR:-}" ]; then
    mkdir -p "$BENCH_DIR"
    work=$(cd "$BENCH_DIR" && pwd)/lsmq-bench-$stamp
    mkdir "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/lsmq-bench.XXXXXX")
fi
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then
        note "run.sh: stores kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

avail_kb() { df -Pk "$work" | awk 'NR == 2 { print $4 }'; }
human_bytes() { numfmt --to=iec --suffix=B "$1"; }

# ---- Helpers ---------------------------------------------------------------

# field LINE KEY: the value of key=value in a result line.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

# calc EXPR: floating-point arithmetic.
calc() { awk "BEGIN { printf \"%.2f\", $* }"; }

# run_bench NAME ARGS...: run the bench, keep its output, echo the result line.
# Dirty pages of the previous run are written back first so that they do not
# compete with this one.
run_bench() {
    local name=$1
    shift
    sync
    note "run.sh: $name: lsmq-engine-bench $*"
    if ! "$bench" "$@" >"$log_dir/$name.out" 2>"$log_dir/$name.err"; then
        note "run.sh: $name failed; see $log_dir/$name.err:"
        tail -5 "$log_dir/$name.err" >&2
    fi
    local line
    line=$(grep '^result ' "$log_dir/$name.out" | tail -1 || true)
    [ -n "$line" ] || line="result error=1 ops_per_s=0"
    echo "$line" >>"$log_dir/results.txt"
    echo "$line"
}

# machine_busy_s: seconds all CPUs together were busy since boot (/proc/stat).
machine_busy_s() {
    awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { print ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}

# db_bench_fillseq NAME VALUE_SIZE NUM SYNC: echo "ops_per_s=N other_cpu_pct=P".
db_bench_fillseq() {
    local name=$1 value=$2 num=$3 sync=$4 extra=(--sync=0)
    if [ "$sync" = 1 ]; then
        extra=(--sync=1 --batch_size=100)
    fi
    local db=$work/db_bench-$name
    sync
    note "run.sh: $name: db_bench --benchmarks=fillseq --value_size=$value --num=$num ${extra[*]}"
    local busy0 busy1
    busy0=$(machine_busy_s)
    /usr/bin/time -f 'time wall=%e user=%U sys=%S' -o "$log_dir/$name.time" \
        db_bench --benchmarks=fillseq --value_size="$value" --num="$num" "${extra[@]}" \
        --compression_type=snappy --disable_wal=0 --db="$db" \
        >"$log_dir/$name.out" 2>&1 || { tail -5 "$log_dir/$name.out" >&2; }
    busy1=$(machine_busy_s)
    rm -rf "$db"
    local ops other
    ops=$(awk '$1 == "fillseq" { for (i = 1; i <= NF; i++) if ($i == "ops/sec") print $(i - 1) }' \
        "$log_dir/$name.out" | tail -1)
    # What the machine did besides db_bench, as a share of both CPUs.
    other=$(sed -n 's/^time wall=\([0-9.]*\) user=\([0-9.]*\) sys=\([0-9.]*\)/\1 \2 \3/p' \
        "$log_dir/$name.time" | awk -v b0="$busy0" -v b1="$busy1" -v n="$(nproc)" \
        '{ o = (b1 - b0 - $2 - $3) / ($1 * n) * 100; if (o < 0) o = 0; printf "%.0f", o }')
    echo "ops_per_s=${ops:-0} other_cpu_pct=${other:-?}"
}

# busy_note: with QUIET_WAIT=S, wait up to S seconds for the 1-minute load
# average to drop under 0.5; then warn if other processes still keep the
# machine busy.
busy_note() {
    local load waited=0
    load=$(cut -d' ' -f1 /proc/loadavg)
    while [ "$waited" -lt "${QUIET_WAIT:-0}" ] && awk "BEGIN { exit !($load > 0.5) }"; do
        [ "$waited" = 0 ] && note "run.sh: load average $load: waiting up to ${QUIET_WAIT}s for a quiet machine"
        sleep 10
        waited=$((waited + 10))
        load=$(cut -d' ' -f1 /proc/loadavg)
    done
    if awk "BEGIN { exit !($load > 0.5) }"; then
        note "run.sh: load average is $load before starting: other processes share the CPUs and the figures will move with them (see the other CPU % column)"
    fi
}

machine_header() {
    say "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    say "- machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r)"
    say "- disk: $(df -PT "$work" | awk 'NR == 2 { print $2 " on " $1 ", " int($5 / 1048576) " GiB free" }') (stores in $work)"
    say "- RocksDB: $(dpkg-query -W -f='${Version}' librocksdb-dev 2>/dev/null || echo '?'), db_bench from rocksdb-tools $(dpkg-query -W -f='${Version}' rocksdb-tools 2>/dev/null || echo '?')"
    say "- logs: $log_dir"
    say "- load average at the start: $(cut -d' ' -f1-3 /proc/loadavg). other CPU %: the share of both CPUs used during a run by everything but the measured process (other processes, and kernel threads, including the writeback of the run's own files)"
}

# ---- Tuning: blob files vs inline x level vs universal ---------------------

if [ "$what" = tuning ]; then
    size_arg=${2:-4G}
    size=$(numfmt --from=iec "${size_arg%B}") || { note "run.sh: bad size $size_arg"; exit 2; }
    queues=${TUNE_QUEUES:-64}
    body=${TUNE_BODY:-1024}
    threads=${TUNE_THREADS:-1}
    window=${TUNE_WINDOW:-64}
    flush=${TUNE_FLUSH:-async}
    # One store at a time: bodies plus record headers, index entries, WAL and
    # compaction's temporary copies (universal may briefly double the data).
    need_kb=$((size * 3 / 1024 + 1048576))
    have_kb=$(avail_kb)
    if [ "$have_kb" -lt "$need_kb" ]; then
        shrunk=$(((have_kb - 1048576) / 3 * 1024 / 268435456 * 268435456))
        if [ "$shrunk" -lt 1073741824 ]; then
            note "run.sh: $(human_bytes $((have_kb * 1024))) free under $work; a $size_arg run needs $(human_bytes $((need_kb * 1024))). Refusing."
            exit 1
        fi
        note "run.sh: only $(human_bytes $((have_kb * 1024))) free: shrinking the run from $size_arg to $(human_bytes "$shrunk")"
        size=$shrunk
    fi

    busy_note
    say "# lsmq store tuning: msg column family"
    say ""
    machine_header
    say "- each run: append $(human_bytes "$size") of ${body} B bodies over $queues queues, $threads threads x window $window, flush=$flush, fresh store; then one catch-up read of every queue"
    say ""
    say "msgs/s: whole run; 2nd half and last quarter: the rate over those parts of the run (steady state)."
    say "msg flush+compaction GB: what the msg family wrote to SST and blob files. disk written: every byte the process wrote (WAL, flushes, compactions, all families) over the body bytes appended."
    say ""
    say "| msg family | msgs/s | 2nd half msgs/s | last quarter msgs/s | msgs/batch | stall % | msg flush+compaction GB | disk written GB (x body) | store GB | read msgs/s | read body MB/s | RSS MB | other CPU % (append, read) |"
    say "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    best=""
    best_rate=0
    for blob in 0 1; do
        for universal in 0 1; do
            label="$([ $blob = 1 ] && echo blob || echo inline)+$([ $universal = 1 ] && echo universal || echo level)"
            store=$work/tune-$blob-$universal
            a=$(run_bench "tune-$label-append" --path "$store" --mode append --queues "$queues" \
                --body "$body" --threads "$threads" --window "$window" --bytes "$size" \
                --flush "$flush" --blob "$blob" --universal "$universal" --progress 10 \
                --stats-file "$log_dir/tune-$label.stats")
            r=$(run_bench "tune-$label-read" --path "$store" --mode read --queues "$queues" \
                --flush "$flush" --blob "$blob" --universal "$universal")
            rm -rf "$store"
            wr=$(field "$a" disk_write_mb)
            st=$(field "$a" store_mb)
            say "| $label | $(field "$a" ops_per_s) | $(field "$a" steady_ops_per_s) | $(field "$a" tail_ops_per_s) | $(field "$a" msgs_per_batch) | $(field "$a" stall_pct) | $(field "$a" msg_comp_gb) | $(calc "${wr:-0} / 1024") ($(calc "${wr:-0} * 1048576 / $size")) | $(calc "${st:-0} / 1024") | $(field "$r" ops_per_s) | $(field "$r" mb_per_s) | $(field "$a" rss_mb) | $(field "$a" other_cpu_pct), $(field "$r" other_cpu_pct) |"
            rate=$(field "$a" steady_ops_per_s)
            if awk "BEGIN { exit !(${rate:-0} > $best_rate) }"; then
                best=$label
                best_rate=$rate
            fi
        done
    done
    say ""
    say "Fastest append over the second half of the run at flush=$flush: $best ($best_rate msgs/s)."
    note "run.sh: summary in $summary"
    exit 0
fi

# ---- Full and quick: the matrix, the ceilings and the targets --------------

# median_line LINES...: the result line with the median ops_per_s.
median_line() {
    printf '%s\n' "$@" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^ops_per_s=/) { split($i, kv, "="); print kv[2] "\t" $0 } }' |
        sort -n | awk -F '\t' '{ l[NR] = $2 } END { print l[int((NR + 1) / 2)] }'
}

# spread LINES...: "min-max" of ops_per_s over the lines.
spread() {
    printf '%s\n' "$@" | sed -n 's/.* ops_per_s=\([0-9]*\).*/\1/p' | sort -n |
        awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR > 1) print lo "-" hi; else print "" }'
}

if [ "$what" = quick ]; then
    n1k=60000 n128=150000 cap=3 reps=1
    need_kb=$((2 * 1048576))
else
    n1k=400000 n128=1000000 cap=8 reps=3
    need_kb=$((6 * 1048576))
fi
have_kb=$(avail_kb)
if [ "$have_kb" -lt "$need_kb" ]; then
    note "run.sh: $(human_bytes $((have_kb * 1024))) free under $work, $what needs $(human_bytes $((need_kb * 1024))). Refusing; try quick or BENCH_DIR=elsewhere."
    exit 1
fi

count_for() { if [ "$1" = 128 ]; then echo "$n128"; else echo "$n1k"; fi; }

busy_note
say "# lsmq store benchmark ($what)"
say ""
machine_header
say "- append runs: fresh store each, topics created before the clock starts; count $n1k (1 KiB) / $n128 (128 B) messages or $cap s, whichever ends first; message i goes to queue i mod N (rows marked random: to a random queue); bodies compress 2:1 like db_bench's; every message carries UNIQ_KEY and WAIT properties; index entries (idx_id, idx_time) written as in production"
say "- the three configurations the targets use, and the 1 KiB --sync=0 ceiling, run $reps times: the median is shown, with the range"
say ""

declare -A ceil ceil_range ceil_other
for body in 1024 128; do
    for sync in 0 1; do
        flush=$([ $sync = 1 ] && echo sync || echo async)
        n=1
        [ "$body,$sync" = "1024,0" ] && n=$reps
        vals=()
        for ((i = 1; i <= n; i++)); do
            vals+=("db_bench $(db_bench_fillseq "db_bench-$body-sync$sync-$i" "$body" "$(count_for $body)" $sync)")
        done
        med=$(median_line "${vals[@]}")
        ceil[$body,$flush]=$(field "$med" ops_per_s)
        ceil_other[$body,$flush]=$(field "$med" other_cpu_pct)
        ceil_range[$body,$flush]=$(spread "${vals[@]}")
    done
done

say "## Ceiling: db_bench fillseq (same disk, same run)"
say ""
say "| value | WAL | ops/s | range | other CPU % |"
say "|---|---|---:|---|---:|"
for body in 1024 128; do
    say "| $body B | --sync=0 | ${ceil[$body,async]} | ${ceil_range[$body,async]} | ${ceil_other[$body,async]} |"
    say "| $body B | --sync=1 --batch_size=100 | ${ceil[$body,sync]} | ${ceil_range[$body,sync]} | ${ceil_other[$body,sync]} |"
done
say ""

declare -A res
table_row() {
    local key=$1 line=$2 body=$3 flush=$4 range=${5:-} qlabel=${6:-}
    local ops c
    ops=$(field "$line" ops_per_s)
    ops=${ops:-0}
    c=${ceil[$body,$flush]:-0}
    local ratio="n/a"
    if [ -n "$c" ] && [ "$c" != 0 ]; then
        ratio=$(calc "$ops / $c")
    fi
    res[$key]=$line
    say "| $(field "$line" body) | ${qlabel:-$(field "$line" queues)} | $flush | $(field "$line" threads)x$(field "$line" window) | $ops | $range | $(field "$line" mb_per_s) | $(field "$line" p50_us) | $(field "$line" p99_us) | $(field "$line" msgs_per_batch) | $(field "$line" rss_mb) | $(field "$line" other_cpu_pct) | $ratio |"
}

say "## Appends"
say ""
say "threads x window: appending threads x appends in flight per thread (1 = waits for each ack)."
say "ratio: msgs/s over the db_bench fillseq ops/s of the same value size and WAL setting."
say ""
say "| body B | queues | flush | threads x window | msgs/s | range | body MB/s | p50 us | p99 us | msgs/batch | RSS MB | other CPU % | ratio to ceiling |"
say "|---:|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
for body in 1024 128; do
    for queues in 64 1 10000 100000; do
        for flush in async sync; do
            for threads in 32 1; do
                key=$body,$queues,$flush,$threads,1
                n=1
                case $key in
                1024,64,async,32,1 | 1024,64,sync,32,1 | 1024,100000,async,32,1) n=$reps ;;
                esac
                lines=()
                for ((i = 1; i <= n; i++)); do
                    store=$work/store-${key//,/-}-$i
                    lines+=("$(run_bench "append-${key//,/-}-$i" --path "$store" --mode append \
                        --queues "$queues" --body "$body" --threads "$threads" --window 1 \
                        --count "$(count_for "$body")" --seconds "$cap" --flush "$flush" \
                        --progress 1)")
                    # Keep a store the read and reopen runs need.
                    if [ "$body,$flush,$threads" = "1024,async,32" ] && [ "$i" = 1 ] &&
                        { [ "$queues" = 64 ] || [ "$queues" = 100000 ]; }; then
                        [ ! -d "$store" ] || mv "$store" "$work/keep-$queues"
                    else
                        rm -rf "$store"
                    fi
                done
                table_row "$key" "$(median_line "${lines[@]}")" "$body" "$flush" \
                    "$(spread "${lines[@]}")"
            done
        done
    done
done
# One appending thread with many appends in flight: how the broker's network
# loop drives the store.
for body in 1024 128; do
    for flush in async sync; do
        key=$body,64,$flush,1,64
        store=$work/store-${key//,/-}
        line=$(run_bench "append-${key//,/-}" --path "$store" --mode append --queues 64 \
            --body "$body" --threads 1 --window 64 --count "$(count_for "$body")" \
            --seconds "$cap" --flush "$flush" --progress 1)
        table_row "$key" "$line" "$body" "$flush"
        rm -rf "$store"
    done
done
# Messages to random queues instead of in queue order: with 100,000 queues,
# cycling makes the keys arrive almost in ascending order, the cheap case.
for queues in 64 100000; do
    key=1024,$queues,async,32,1,random
    store=$work/store-${key//,/-}
    line=$(run_bench "append-${key//,/-}" --path "$store" --mode append --queues "$queues" \
        --body 1024 --threads 32 --window 1 --count "$n1k" --seconds "$cap" --flush async \
        --order random --progress 1)
    table_row "$key" "$line" 1024 async "" "$queues random"
    rm -rf "$store"
done
say ""

reopen=$(run_bench reopen-100000 --path "$work/keep-100000" --mode reopen --queues 100000)
read64=$(run_bench read-64 --path "$work/keep-64" --mode read --queues 64)
read100k=$(run_bench read-100000 --path "$work/keep-100000" --mode read --queues 100000)
rm -rf "$work/keep-64" "$work/keep-100000"

say "## Catch-up read and reopen"
say ""
say "Read: one thread reads every queue from offset 0 to its end with engine_read, 32 records per call; records decoded and offsets checked."
say ""
say "| store (1 KiB, written async 32x1) | msgs read | msgs/s | body MB/s | p50 us per call | p99 us per call | RSS MB | other CPU % |"
say "|---|---:|---:|---:|---:|---:|---:|---:|"
for r in "64 queues|$read64" "100,000 queues|$read100k"; do
    l=${r#*|}
    say "| ${r%%|*} | $(field "$l" ops) | $(field "$l" ops_per_s) | $(field "$l" mb_per_s) | $(field "$l" call_p50_us) | $(field "$l" call_p99_us) | $(field "$l" rss_mb) | $(field "$l" other_cpu_pct) |"
done
say ""
say "Reopen of the 100,000-queue store: engine_open $(field "$reopen" open_secs) s, then $(field "$reopen" check_secs) s to list the topics and query the offsets of all $(field "$reopen" queues) queues ($(field "$reopen" messages) messages, $(field "$reopen" store_mb) MB on disk); peak RSS $(field "$reopen" rss_mb) MB."
say ""

# ---- Targets ---------------------------------------------------------------

verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
num() { local v; v=$(field "$1" "$2"); echo "${v:-0}"; }
a64=$(num "${res[1024,64,async,32,1]}" ops_per_s)
s64=$(num "${res[1024,64,sync,32,1]}" ops_per_s)
a100k=$(num "${res[1024,100000,async,32,1]}" ops_per_s)
rnd64=$(num "${res[1024,64,async,32,1,random]}" ops_per_s)
rnd100k=$(num "${res[1024,100000,async,32,1,random]}" ops_per_s)
c1k=${ceil[1024,async]:-0}
# Peak RSS over every process that had the 100,000 queues open: appends, reopen, read.
rss_max=$(grep ' queues=100000 ' "$log_dir/results.txt" |
    sed -n 's/.* rss_mb=\([0-9.]*\).*/\1/p' | sort -n | tail -1)
rss_max=${rss_max:-0}
open_s=$(field "$reopen" open_secs)
open_s=${open_s:-99}
r64=$(num "$read64" ops_per_s)

say "## Targets"
say ""
say "| target | measured | needed | result |"
say "|---|---:|---:|---|"
say "| ASYNC append 1 KiB, 64 queues, 32 appenders vs db_bench fillseq --sync=0 | $a64 / $c1k = $(calc "$a64 / ($c1k + 0.000001)")x | >= 0.7x | $(verdict "$a64 >= 0.7 * $c1k && $c1k > 0") |"
say "| SYNC_FLUSH append, 32 appenders vs the ASYNC figure (group commit) | $s64 / $a64 = $(calc "$s64 / ($a64 + 0.000001)")x | >= 0.7x | $(verdict "$s64 >= 0.7 * $a64 && $a64 > 0") |"
say "| ASYNC append, 100,000 queues vs 64 queues | $a100k / $a64 = $(calc "$a100k / ($a64 + 0.000001)")x | >= 0.9x | $(verdict "$a100k >= 0.9 * $a64 && $a64 > 0") |"
say "| (not a target) the same with messages to random queues | $rnd100k / $rnd64 = $(calc "$rnd100k / ($rnd64 + 0.000001)")x | >= 0.9x | $(verdict "$rnd100k >= 0.9 * $rnd64 && $rnd64 > 0") |"
say "| reopen, 100,000 queues | $open_s s | <= 5 s | $(verdict "$open_s <= 5") |"
say "| peak RSS, 100,000 queues (max over its append, reopen and read processes) | $rss_max MB | <= 512 MiB | $(verdict "$rss_max <= 512 && $rss_max > 0") |"
say "| catch-up read, 64 queues vs ASYNC append | $r64 / $a64 = $(calc "$r64 / ($a64 + 0.000001)")x | >= 2x | $(verdict "$r64 >= 2 * $a64 && $a64 > 0") |"
say ""
note "run.sh: summary in $summary; raw result lines in $log_dir/results.txt"
