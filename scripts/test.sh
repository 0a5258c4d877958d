#!/usr/bin/env bash
# Sets up (idempotently) and runs the test suite.
#   scripts/test.sh             fast tests (the default label), then each fuzz harness for 5 s
#                               on its corpus and crash regressions (scripts/fuzz.sh --ci)
#   scripts/test.sh --all       fast and slow tests, then the fuzz harnesses
#   scripts/test.sh --sanitize  ASan + UBSan build in build-sanitize/, fast tests under it
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
label=(-L fast)
[ "$mode" = "--all" ] && label=()
if [ "$mode" = "--sanitize" ]; then
  # LibTorch and the Debian libraries are not instrumented; ASan still checks every heap
  # access of anchor-rl's code. Leaks inside OpenMPI / LibTorch start-up are suppressed
  # (tests/sanitizer/lsan.supp); anchor-rl's own are reported.
  export BUILD_DIR=build-sanitize ANCHOR_CMAKE_ARGS="-DANCHOR_SANITIZE=ON"
  # fast_unwind_on_malloc=0: full allocation stacks through the uninstrumented libraries, so
  # that leaks inside OpenMPI match their suppressions (frame-pointer unwinding stops there).
  export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:fast_unwind_on_malloc=0"
  export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizer/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
scripts/setup.sh
ctest --test-dir "${BUILD_DIR:-build}" "${label[@]}" -j"$(nproc)" --output-on-failure
[ "$mode" = "--sanitize" ] || scripts/fuzz.sh --ci
