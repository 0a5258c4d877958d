"""PEFT loads the LoRA adapters anchor-rl saved, and transformers loads their merged export.

Usage: check_peft_loads_anchor_adapter.py ANCHOR_RL_BINARY ADAPTER_DIR
ADAPTER_DIR was written by the C++ test Lora.SavedAdapterDirectoryReloadsExactlyAndHoldsPeftFiles
(rank 4 on q_proj, up_proj, down_proj of a tiny tied Llama, plus a <|good|> token added past the
base vocabulary and trained as a token row) with anchor_logits.safetensors (inputs and anchor-rl's
logits). Checks, each against those logits to 1e-5:
  1. PeftModel.from_pretrained(base resized to the tokenizer, ADAPTER_DIR): PEFT reads anchor-rl's
     adapter_config.json, key names and token rows.
  2. `anchor-rl export --merge ADAPTER_DIR --out DIR`, loaded by AutoModelForCausalLM alone.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from peft import PeftModel  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

TOLERANCE = 1e-5


def logits_of(model, ref):
    mask = ref["attention_mask"]
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(input_ids=ref["input_ids"], attention_mask=mask, position_ids=position_ids).logits


def compare(what, logits, ref):
    mask = ref["attention_mask"].bool()
    assert logits.shape == ref["logits"].shape, (what, logits.shape, ref["logits"].shape)
    diff = (logits - ref["logits"]).abs().amax(-1)[mask].max().item()
    print(f"{what}: max |logits - anchor-rl's| = {diff:.3g}")
    if diff > TOLERANCE:
        print(f"FAIL: {what} disagrees with anchor-rl")
        return 1
    return 0


def main():
    binary, adapter_dir = sys.argv[1], sys.argv[2]
    ref = load_file(os.path.join(adapter_dir, "anchor_logits.safetensors"))
    config = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
    base_dir = config["base_model_name_or_path"]
    tokenizer_vocab = len(AutoTokenizer.from_pretrained(adapter_dir))

    # 1. PEFT on the base (grown to the tokenizer, as any user of added tokens does first).
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    if tokenizer_vocab > base.config.vocab_size:
        base.resize_token_embeddings(tokenizer_vocab)
    peft_model = PeftModel.from_pretrained(base, adapter_dir).eval()
    loaded = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n or "trainable_tokens" in n)
    print(f"PEFT loaded {adapter_dir}: {loaded} adapter parameters, r={config['r']}, "
          f"targets {config['target_modules']}, token rows {config.get('trainable_token_indices')}")
    failed = compare("PeftModel.from_pretrained", logits_of(peft_model, ref), ref)

    # 2. The merged export, read by transformers without PEFT.
    out = tempfile.mkdtemp(prefix="anchor_merged_")
    shutil.rmtree(out)
    try:
        subprocess.run([binary, "export", "--merge", adapter_dir, "--out", out, "--dtype", "float32"], check=True)
        merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
        failed |= compare("transformers on `anchor-rl export --merge`", logits_of(merged, ref), ref)
        # The export's own refusal: an existing non-empty directory is not overwritten.
        again = subprocess.run([binary, "export", "--merge", adapter_dir, "--out", out], capture_output=True, text=True)
        if again.returncode == 0 or "is not an empty directory" not in again.stderr:
            print(f"FAIL: export into a non-empty directory: exit {again.returncode}, {again.stderr!r}")
            failed = 1
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
