#!/usr/bin/env bash
# Sets up (idempotently) and runs the test suite.
#   scripts/test.sh           fast tests (the default label)
#   scripts/test.sh --all     fast and slow tests
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
label=(-L fast)
[ "${1:-}" = "--all" ] && label=()
ctest --test-dir "${BUILD_DIR:-build}" "${label[@]}" -j"$(nproc)" --output-on-failure
