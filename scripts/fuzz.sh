#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang in build/fuzz and runs
# each one for FUZZ_SECONDS seconds (default 60), starting from a seed corpus
# generated into build/fuzz/corpus (new inputs found are kept there for the
# next run). Exits non-zero if any target reports a crash, a sanitizer error,
# a leak or a timeout; reproducers are left in build/fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh                     every target
#   FUZZ_SECONDS=20 scripts/fuzz.sh fuzz_frame
#   build/fuzz/tests/fuzz/fuzz_frame build/fuzz/artifacts/fuzz_frame/crash-…   replay
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
build=build/fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_frame fuzz_record)

if ! command -v clang >/dev/null; then
  echo "fuzz: clang not found; scripts/setup.sh installs clang and libclang-rt-14-dev" >&2
  exit 1
fi

# Sanitizers come from tests/fuzz/CMakeLists.txt per target, so LSMQ_SANITIZE
# stays off here; only the fuzz targets and what they link are built.
CC=clang cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLSMQ_FUZZ=ON -DLSMQ_SANITIZE=OFF >/dev/null
cmake --build "$build" -j2 --target fuzz_seeds "${targets[@]}"

"$build/tests/fuzz/fuzz_seeds" "$build/corpus"

status=0
for t in "${targets[@]}"; do
  mkdir -p "$build/artifacts/$t" "$build/corpus/$t"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$build/artifacts/$t/")
  dict="tests/fuzz/${t#fuzz_}.dict"
  [ -f "$dict" ] && args+=(-dict="$dict")
  log="$build/$t.log"
  echo "fuzz: running $t for ${seconds}s (log: $log)"
  if "$build/tests/fuzz/$t" "${args[@]}" "$build/corpus/$t" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" | sed "s/^/fuzz: $t /" || true
    echo "fuzz: $t ok, corpus $(find "$build/corpus/$t" -type f | wc -l) inputs"
  else
    echo "fuzz: $t FAILED; reproducer in $build/artifacts/$t/, log follows" >&2
    tail -n 60 "$log" >&2
    status=1
  fi
done
exit "$status"
