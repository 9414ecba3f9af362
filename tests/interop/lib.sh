# Sourced by the interop suites' run.sh: their common command line
# (NAMESRV_ADDR [scenario...]) and the PASS/FAIL tally that every suite ends
# with, "N passed, M failed", which run-upstream-clients.sh adds up.

# interop_args SCRIPT DEFAULT_SCENARIO... -- ARG...: sets ns (the name server's host:port;
# "-" takes $NAMESRV_ADDR) and scenarios (the defaults when ARG names none). With no ARG or
# -h/--help, prints SCRIPT's header comment and exits 2.
interop_args() {
    local script="$1" defaults=()
    shift
    while [[ $# -gt 0 && "$1" != "--" ]]; do
        defaults+=("$1")
        shift
    done
    shift
    ns="${1:-}"
    if [[ -z "$ns" || "$ns" == "-h" || "$ns" == "--help" ]]; then
        awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$script"
        exit 2
    fi
    shift
    if [[ "$ns" == "-" ]]; then
        ns="${NAMESRV_ADDR:?NAMESRV_ADDR is not set}"
    fi
    scenarios=("$@")
    if [[ ${#scenarios[@]} -eq 0 ]]; then
        scenarios=("${defaults[@]}")
    fi
}

passed=0
failed=0
failures=()

interop_passed() {
    passed=$((passed + 1))
}

# interop_failed NAME: one more failure, listed by NAME in the summary.
interop_failed() {
    failed=$((failed + 1))
    failures+=("$1")
}

# interop_judge SCENARIO STATUS OUTPUT START: counts one scenario run in its own process (its
# exit status, its output, $SECONDS when it started) and shows its PASS/FAIL and progress
# lines, not what the client library printed besides.
interop_judge() {
    local s="$1" rc="$2" out="$3" t="$4"
    grep -E '^(PASS |FAIL |  \[)' <<<"$out"
    if [[ $rc -eq 0 ]] && grep -q "^PASS $s " <<<"$out"; then
        interop_passed
    else
        grep -q "^FAIL $s " <<<"$out" || {
            tail -20 <<<"$out"
            echo "FAIL $s $((SECONDS - t))s: exit status $rc without a verdict"
        }
        interop_failed "$s"
    fi
}

# interop_nothing_ran: the suite could not start; every scenario counts as failed.
interop_nothing_ran() {
    echo "0 passed, ${#scenarios[@]} failed"
    exit 1
}

# interop_setup_failed WHAT: as interop_nothing_ran, naming the step that failed.
interop_setup_failed() {
    echo "FAIL setup: $1"
    interop_nothing_ran
}

# interop_summary [NOTE]: the closing lines; returns 1 if anything failed.
interop_summary() {
    [[ $failed -gt 0 ]] && echo "failed: ${failures[*]}${1:+ $1}"
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}
