"""Independent LoRA references from Hugging Face PEFT, for tests/unit/test_lora.cpp.

For each case below, on a tiny fixture model of make_hf_fixtures.py: PEFT's get_peft_model with
the case's LoraConfig, every adapter matrix (and trainable token row) set to random values (B is
zero at PEFT's init, which would make the test blind to B's forward), saved with
save_pretrained as PEFT_DIR/<case>/ (adapter_config.json + adapter_model.safetensors, the base
named by base_model_name_or_path), plus <case>.reference.safetensors with
  input_ids, attention_mask   a left-padded batch
  logits                      PEFT's logits on it
  loss_weights                a fixed random [B, T, vocab] tensor
  grad.<tensor name>          d(sum(logits * loss_weights over real tokens)) / d(adapter tensor),
                              under the names adapter_model.safetensors uses.

Usage: make_peft_fixtures.py HF_FIXTURES_DIR OUT_DIR   (idempotent: OUT_DIR/.complete)
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402

CASES = {
    # Every linear layer, tied embeddings, two token rows trained beside the adapters.
    "llama_gqa_tied_all_linear": dict(base="llama_gqa_tied", r=4, lora_alpha=8, target_modules="all-linear",
                                      trainable_token_indices=[5, 7]),
    # Qwen3 (q/k norms), a subset of layers, gaussian init.
    "qwen3_tiny_qv_down": dict(base="qwen3_tiny", r=3, lora_alpha=6, target_modules=["q_proj", "v_proj", "down_proj"],
                               init_lora_weights="gaussian"),
    # Untied head with biases (q/k/v/o bias), rank 2, the token rows of embed_tokens and lm_head.
    "llama3_rope_untied_attn": dict(base="llama3_rope_untied", r=2, lora_alpha=2,
                                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                    trainable_token_indices={"embed_tokens": [3], "lm_head": [3]}),
}
VERSION = "1"


def make(case, spec, hf_dir, out_dir):
    torch.manual_seed(1234)
    base_dir = os.path.abspath(os.path.join(hf_dir, spec["base"]))
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    kwargs = {k: v for k, v in spec.items() if k != "base"}
    peft_model = get_peft_model(model, LoraConfig(lora_dropout=0.0, **kwargs))
    params = {}
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if p.requires_grad:
                p.copy_(torch.randn_like(p) * 0.2)
                params[name] = p
    peft_model.eval()
    save_dir = os.path.join(out_dir, case)
    peft_model.save_pretrained(save_dir)
    cfg_path = os.path.join(save_dir, "adapter_config.json")
    cfg = json.load(open(cfg_path))
    cfg["base_model_name_or_path"] = base_dir  # where anchor-rl finds the base
    json.dump(cfg, open(cfg_path, "w"), indent=2)

    vocab = model.config.vocab_size
    input_ids = torch.randint(3, vocab, (3, 9))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, :3] = 0  # left padding
    attention_mask[2, :5] = 0
    input_ids[attention_mask == 0] = 0
    position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
    logits = peft_model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
    loss_weights = torch.randn(logits.shape)
    loss = (logits * loss_weights * attention_mask.unsqueeze(-1)).sum()
    loss.backward()
    ref = {"input_ids": input_ids, "attention_mask": attention_mask, "logits": logits.detach(),
           "loss_weights": loss_weights}
    # Gradients under adapter_model.safetensors' names (PEFT drops the adapter name "default").
    for name, p in params.items():
        saved = name.replace(".default", "").replace("trainable_tokens_delta.weight", "trainable_tokens_delta")
        ref["grad." + saved] = p.grad.detach().clone()
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(out_dir, case + ".reference.safetensors"))
    print(f"{case}: {len(params)} adapter tensors, logits {tuple(logits.shape)}")


def main():
    hf_dir, out_dir = sys.argv[1], sys.argv[2]
    stamp = os.path.join(out_dir, ".complete")
    # Rebuilt whenever the base fixtures are (their stamp is part of ours).
    want = VERSION + ":" + open(os.path.join(hf_dir, ".complete")).read()
    if os.path.exists(stamp) and open(stamp).read() == want:
        print("PEFT fixtures up to date")
        return 0
    os.makedirs(out_dir, exist_ok=True)
    for case, spec in CASES.items():
        make(case, spec, hf_dir, out_dir)
    open(stamp, "w").write(want)
    return 0


if __name__ == "__main__":
    sys.exit(main())
