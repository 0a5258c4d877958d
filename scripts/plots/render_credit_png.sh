#!/usr/bin/env bash
# Renders the offline page written by `anchor-rl credit --out DIR` (DIR/credit.html) to
# DIR/credit.png with headless Chromium, so a credit map can be looked at without a browser.
# Installs Debian's chromium-headless-shell if no Chromium is found.
#   scripts/plots/render_credit_png.sh DIR [WIDTH] [HEIGHT]      (default 1200 x 900)
set -euo pipefail
dir="${1:?usage: render_credit_png.sh DIR [WIDTH] [HEIGHT]}"
width="${2:-1200}"; height="${3:-900}"
[ -f "$dir/credit.html" ] || { echo "render_credit_png.sh: $dir/credit.html not found (run anchor-rl credit --out $dir)" >&2; exit 1; }
browser="$(command -v chromium-headless-shell || command -v chromium || true)"
if [ -z "$browser" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium-headless-shell >/dev/null
  browser="$(command -v chromium-headless-shell)"
fi
page="file://$(realpath "$dir/credit.html")"
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$width,$height" \
  --screenshot="$dir/credit.png" "$page" 2>/dev/null
echo "render_credit_png.sh: $dir/credit.png"
