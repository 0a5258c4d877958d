#!/usr/bin/env bash
# Installs everything anchor-rl needs on a Debian machine and builds it. Idempotent: a second
# run only rebuilds what changed.
#   scripts/setup.sh            apt packages + Python venv (pinned torch wheel) + build/
# Environment: ANCHOR_VENV (default ~/.cache/anchor-rl/venv), BUILD_DIR (default build),
# ANCHOR_BUILD_TARGETS (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${ANCHOR_VENV:-$HOME/.cache/anchor-rl/venv}"
BUILD_DIR="${BUILD_DIR:-build}"

# --- Debian packages ---------------------------------------------------------------------
APT_PACKAGES=(build-essential cmake pkg-config ccache python3 python3-venv
  libyaml-cpp-dev libspdlog-dev libfmt-dev libsentencepiece-dev libgtest-dev libgmock-dev
  nlohmann-json3-dev libcli11-dev libopenmpi-dev openmpi-bin libpcre2-dev libicu-dev libxxhash-dev
  libprotobuf-c-dev protobuf-c-compiler libboost-dev libcurl4-openssl-dev)
scripts/setup/apt_install.sh setup "${APT_PACKAGES[@]}"

# --- Python virtual environment with the pinned torch wheel (LibTorch lives inside) --------
REQ=scripts/setup/requirements.txt
STAMP="$VENV/.anchor-requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into $VENV (the torch wheel is ~3 GB the first time)"
  mkdir -p "$(dirname "$VENV")"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r "$REQ"
  echo "$want" > "$STAMP"
fi

# --- build ---------------------------------------------------------------------------------
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DANCHOR_VENV="$VENV" ${ANCHOR_CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$BUILD_DIR" -j"$(nproc)" ${ANCHOR_BUILD_TARGETS:+--target $ANCHOR_BUILD_TARGETS}
echo "setup: done ($BUILD_DIR/anchor-rl)"
