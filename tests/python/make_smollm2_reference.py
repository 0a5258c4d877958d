"""transformers' logits and greedy generations for SmolLM2-135M-Instruct on chat prompts, the
reference of tests/unit/test_smollm2.cpp (anchor-rl must match both).

The prompts are rendered with the model's own chat template (apply_chat_template) and batched
with left padding, as anchor-rl's sampler batches them.

Usage: make_smollm2_reference.py MODEL_DIR OUT.safetensors
"""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

PROMPTS = ["What is the capital of France?", "Explain in one sentence why the sky is blue.",
           "Tom has 3 apples and buys 5 more. How many apples does he have?"]


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    if os.path.exists(out) and os.path.getmtime(out) > os.path.getmtime(os.path.join(model_dir, "model.safetensors")):
        return 0
    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    rows = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
            for p in PROMPTS]
    ids = [tok(r, add_special_tokens=False).input_ids for r in rows]
    T = max(len(x) for x in ids)
    pad = tok.pad_token_id
    input_ids = torch.tensor([[pad] * (T - len(x)) + x for x in ids])
    mask = torch.tensor([[0] * (T - len(x)) + [1] * len(x) for x in ids])
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids).logits
        generated = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=24, do_sample=False,
                                   eos_token_id=tok.eos_token_id, pad_token_id=pad)
    # Keep the logits of the last 8 positions only (the file stays small).
    save_file({"input_ids": input_ids, "attention_mask": mask, "logits_tail": logits[:, -8:].contiguous(),
               "greedy_tokens": generated[:, T:].contiguous()}, out)
    for p, g in zip(PROMPTS, generated[:, T:]):
        print(p, "->", repr(tok.decode(g, skip_special_tokens=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
