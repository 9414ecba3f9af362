#!/usr/bin/env bash
# The tree's structural rules, checked on every test run:
#   - only engine/ and index/ use RocksDB's API;
#   - server/ and tools/ reach the store through engine.h and index.h, never
#     an internal or extension header;
#   - bench/ includes nothing from tests/;
#   - the clock and the logger exist once (protocol/clock.c, protocol/log.c);
#   - every exported symbol of a static library carries its prefix.
#
#   check_structure.sh SOURCE_DIR LIB=ARCHIVE...
# where LIB is a library name known below and ARCHIVE its .a file.
set -euo pipefail
src=$1
shift
cd "$src"
failed=0
fail() { echo "structure: $*" >&2; failed=1; }

sources() { find "$@" -name '*.c' -o -name '*.h' 2>/dev/null; }

# RocksDB's C API: its functions are called, its types end in _t.
if hits=$(sources protocol transport server client tools bench tests replication controller |
          xargs grep -nE '\brocksdb_[a-z0-9_]+(_t\b|[[:space:]]*\()' 2>/dev/null); then
    fail "RocksDB used outside engine/ and index/:"$'\n'"$hits"
fi

if hits=$(sources server tools | xargs grep -nE \
          '#include "([^"]*/)?(internal|index_internal|engine_ext)\.h"' 2>/dev/null); then
    fail "server/ or tools/ include a store internal or extension header:"$'\n'"$hits"
fi

if hits=$(sources bench | xargs grep -nE '#include "[^"]*tests/' 2>/dev/null); then
    fail "bench/ includes from tests/:"$'\n'"$hits"
fi
if grep -nE 'tests/|\.\./tests' bench/CMakeLists.txt; then
    fail "bench/CMakeLists.txt reaches into tests/"
fi

if hits=$(sources protocol transport engine index replication controller server client tools bench tests |
          grep -v '^protocol/clock.c$' |
          xargs grep -nE '\b(clock_gettime|gettimeofday)[[:space:]]*\(|\btime\(NULL\)' 2>/dev/null); then
    fail "a clock read outside protocol/clock.c (use proto_mono_ms / proto_wall_ms):"$'\n'"$hits"
fi
# Libraries log through proto_log; only the programs' main files print
# their start-up errors, and the out-of-memory idiom its one line.
if hits=$(find protocol transport engine index replication controller server client -name '*.c' |
          grep -vE '^(protocol/log\.c|protocol/alloc\.c|server/mq(broker|namesrv)\.c)$' |
          xargs grep -nE '\bv?fprintf[[:space:]]*\([[:space:]]*stderr|\bvfprintf[[:space:]]*\(' \
          2>/dev/null); then
    fail "a logger outside protocol/log.c (use proto_log):"$'\n'"$hits"
fi

prefix_of() {
    case $1 in
        lsmq_protocol) echo '^(proto_|lsmq_strerror$)' ;;
        lsmq_transport) echo '^transport_' ;;
        lsmq_engine) echo '^engine_' ;;
        lsmq_index) echo '^index_' ;;
        lsmq_net) echo '^server_' ;;
        lsmq_namesrv) echo '^namesrv_' ;;
        lsmq_broker) echo '^broker_' ;;
        lsmq_client) echo '^lsmq_' ;;
        lsmq_replication) echo '^repl_' ;;
        lsmq_controller) echo '^ctl_' ;;
        *) return 1 ;;
    esac
}
for pair in "$@"; do
    lib=${pair%%=*}
    archive=${pair#*=}
    re=$(prefix_of "$lib") || { fail "no prefix known for $lib"; continue; }
    # Sanitizer builds add symbols of their own (__odr_asan.<name>, ...).
    bad=$(nm -g --defined-only "$archive" 2>/dev/null |
          awk '$2 ~ /^[TDBRCGV]$/ { print $3 }' | sort -u |
          grep -vE '^__(odr_asan|asan|ubsan|sancov)' | grep -vE "$re" || true)
    [ -z "$bad" ] || fail "$lib exports symbols without its prefix ($re):"$'\n'"$bad"
done

[ $failed -eq 0 ] && echo "structure: ok"
exit $failed
