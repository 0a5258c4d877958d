#!/usr/bin/env bash
# Runs the libFuzzer harnesses of tests/fuzz/ (every parser of untrusted input).
#   scripts/fuzz.sh [SECONDS] [HARNESS...]   each harness for SECONDS (default 300)
#   scripts/fuzz.sh --ci                     each harness for 5 s (what scripts/test.sh runs)
# Installs clang-14 + libFuzzer (Debian) if missing, builds build-fuzz/ with clang and
# ASan + UBSan, then runs each harness on the checked-in corpus tests/fuzz/corpus/NAME plus the
# crash regressions in tests/fuzz/regressions/NAME; new inputs go to build-fuzz/corpus/NAME
# (the checked-in corpus is not modified). A crash leaves build-fuzz/crashes/NAME-* and makes
# the script exit 1: add the input to tests/fuzz/regressions/NAME once it is fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=300
seed=0  # 0: libFuzzer picks one; CI uses a fixed seed so that a run can be repeated
[ "${1:-}" = "--ci" ] && { seconds=5; seed=1; shift; }
[[ "${1:-}" =~ ^[0-9]+$ ]] && { seconds=$1; shift; }
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}

scripts/setup/apt_install.sh fuzz clang-14 libclang-rt-14-dev
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  CC=clang-14 CXX=clang++-14 cmake -S tests/fuzz -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
fi
cmake --build "$BUILD" -j"$(nproc)" >/dev/null

harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(train_config jsonl_dataset safetensors_header model_config tokenizer_json
                                       answer_parsers checkpoint_manifest ablation_spec reward_answer)
mkdir -p "$BUILD/crashes"
scratch_root=/dev/shm  # the harnesses write each input to a file: tmpfs when there is one
[ -d "$scratch_root" ] && [ -w "$scratch_root" ] || scratch_root=${TMPDIR:-/tmp}
failed=0
printf "%-22s %8s %12s %10s %8s\n" harness seconds executions exec/s crashes
for name in "${harnesses[@]}"; do
  work="$BUILD/corpus/$name"
  mkdir -p "$work"
  dirs=("$work" "tests/fuzz/corpus/$name")
  [ -d "tests/fuzz/regressions/$name" ] && dirs+=("tests/fuzz/regressions/$name")
  log="$BUILD/$name.log"
  rc=0
  scratch=$(mktemp -d "$scratch_root/anchor-fuzz-$name.XXXXXX")
  ANCHOR_FUZZ_SCRATCH="$scratch" ASAN_OPTIONS=detect_leaks=1 "$BUILD/fuzz_$name" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=4096 -seed="$seed" -print_final_stats=1 -artifact_prefix="$BUILD/crashes/$name-" "${dirs[@]}" >"$log" 2>&1 || rc=$?
  rm -rf "$scratch"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  crashes=0
  if [ $rc -ne 0 ]; then
    crashes=1
    failed=1
  fi
  printf "%-22s %8s %12s %10s %8s\n" "$name" "$seconds" "${execs:-0}" "${rate:-0}" "$crashes"
  if [ $rc -ne 0 ]; then
    echo "fuzz: $name failed (exit $rc); the end of $log:"
    grep -E "ERROR|SUMMARY|Test unit written|==[0-9]+==" "$log" | head -20
  fi
done
exit $failed
