"""transformers must load a checkpoint written by anchor-rl unchanged and give its logits.

Usage: check_hf_loads_anchor_checkpoint.py MODEL_DIR [MODEL_DIR ...]
Each MODEL_DIR was written by a C++ test (HfCheckpoint.SaveReloadIsExactAndWritesFilesForTransformers:
sharded safetensors + index, SentencePiece tokenizer with an added <|good|> token;
HfCheckpoint.BpeModelWithAddedTokenSavesForTransformers: Qwen3 with tokenizer.json and an added
<|good|>) together with anchor_logits.safetensors (inputs and anchor-rl's logits) and, for
tokenizer.json models, anchor_text.txt with the ids anchor-rl gave it (text_ids);
VocabularyExtension.ExtendedModelSavesForTransformers: <|good|>, <|bad|>, [IND] added by the SFT
modes to Qwen3 (tokenizer.json, tied head) and to a Llama with an untied head (tokenizer.model),
with anchor_tokens.json (token -> id).
"""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402


def check(model_dir):
    ref = load_file(os.path.join(model_dir, "anchor_logits.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    mask = ref["attention_mask"]
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model(input_ids=ref["input_ids"], attention_mask=mask, position_ids=position_ids).logits
    assert logits.shape == ref["logits"].shape, (logits.shape, ref["logits"].shape)
    diff = (logits - ref["logits"]).abs().amax(-1)[mask.bool()].max().item()
    print(f"max |logits(transformers) - logits(anchor-rl)| = {diff:.3g}")
    if diff > 1e-4:
        print("FAIL: transformers disagrees with anchor-rl on the checkpoint anchor-rl wrote")
        return 1
    if "text_ids" in ref:
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(model_dir)
        text = open(os.path.join(model_dir, "anchor_text.txt"), encoding="utf-8").read()
        ids = tok(text).input_ids
        print(f"{model_dir}: transformers ids {ids}")
        if ids != ref["text_ids"].tolist() or tok.convert_tokens_to_ids("<|good|>") != ids[0]:
            print(f"FAIL: transformers tokenizes differently: anchor-rl {ref['text_ids'].tolist()}")
            return 1
    tokens_file = os.path.join(model_dir, "anchor_tokens.json")
    if os.path.exists(tokens_file):  # added special tokens (SFT modes) and the ids anchor-rl gave them
        import json
        want = json.load(open(tokens_file))
        if os.path.exists(os.path.join(model_dir, "tokenizer.json")):
            from transformers import AutoTokenizer
            tok = AutoTokenizer.from_pretrained(model_dir)
            for token, id_ in want.items():
                got = tok.convert_tokens_to_ids(token)
                ids = tok(f"a{token}b", add_special_tokens=False).input_ids
                print(f"{model_dir}: {token} -> {got} (anchor-rl {id_}); 'a{token}b' -> {ids}")
                if got != id_ or id_ not in ids:
                    print(f"FAIL: transformers does not read {token} as one token with id {id_}")
                    return 1
        else:
            # transformers 5 reads tokenizer.model only through protobuf (not installed); the added
            # tokens it would register are tokenizer_config.json's added_tokens_decoder.
            decoder = json.load(open(os.path.join(model_dir, "tokenizer_config.json")))["added_tokens_decoder"]
            for token, id_ in want.items():
                entry = decoder.get(str(id_), {})
                print(f"{model_dir}: added_tokens_decoder[{id_}] = {entry.get('content')} (special: {entry.get('special')})")
                if entry.get("content") != token or not entry.get("special"):
                    print(f"FAIL: tokenizer_config.json does not declare {token} as special token {id_}")
                    return 1
    return 0


def main():
    return max(check(d) for d in sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
