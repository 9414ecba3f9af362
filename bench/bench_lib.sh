# Shell helpers of the broker benchmark scripts (sourced, not run): log
# directories, ports, processes, result lines and medians. The caller sets
# `set -euo pipefail` and keeps the pids it starts (stop_pid stops one).

# log_dirs NAME MODE: build_dir (BUILD_DIR, default build/release), stamp,
# log_dir (LOG_DIR, default $build_dir/bench-logs/NAME-<time>-MODE; created,
# absolute) and summary ($log_dir/summary.md).
log_dirs() {
    build_dir=${BUILD_DIR:-build/release}
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    log_dir=${LOG_DIR:-$build_dir/bench-logs/$1-$stamp-$2}
    mkdir -p "$log_dir"
    log_dir=$(cd "$log_dir" && pwd)
    summary=$log_dir/summary.md
}

# free_port: a TCP port nothing listens on now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# stop_pid PID: SIGTERM, wait up to 30 s, then SIGKILL. Quiet when it is gone.
stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "process $pid ignored SIGTERM for 30 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# wait_log FILE REGEX SECONDS: until FILE has a line matching REGEX; 1 on timeout.
wait_log() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# field LINE KEY: the value of key=value in a result line (empty when absent).
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }

# median: the median of the numbers on stdin, one per line.
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# others LINE: CPU % (100 = one core) that processes other than the client and
# the brokers took during an mqbench run, from its result line.
others() {
    local m c b
    m=$(field "$1" machine_cpu_pct)
    c=$(field "$1" cpu_pct)
    b=$(field "$1" broker_cpu_pct)
    [ -n "$m" ] || { echo "?"; return; }
    awk -v m="$m" -v c="${c:-0}" -v b="${b:-0}" 'BEGIN { v = m - c - b; printf "%.0f", v < 0 ? 0 : v }'
}

# loadavg: the 1, 5 and 15-minute load averages.
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# machine_ticks: busy clock ticks of all cores together (/proc/stat).
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

# wait_quiet MAX_PCT [SECONDS]: between runs (our own processes idle), wait
# until the machine's busy CPU over 2 s is under MAX_PCT (100 = one core),
# at most SECONDS (default 600); says so on stderr when it gives up. 0 or
# empty MAX_PCT: no wait.
wait_quiet() {
    local max=${1:-0} limit=${2:-600} waited=0 m0 m1 pct
    [ "$max" -gt 0 ] 2>/dev/null || return 0
    while :; do
        m0=$(machine_ticks)
        sleep 2
        m1=$(machine_ticks)
        pct=$(((m1 - m0) * 100 / $(getconf CLK_TCK) / 2))
        [ "$pct" -lt "$max" ] && return 0
        waited=$((waited + 2))
        if [ "$waited" -ge "$limit" ]; then
            echo "the machine stayed busy ($pct% CPU) for $limit s; going on" >&2
            return 0
        fi
    done
}
