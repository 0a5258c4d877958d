"""Builds the independent-reference fixtures for the model tests with Hugging Face transformers.

For each tiny architecture below: a random LlamaForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM
saved with save_pretrained (config.json + safetensors), a SentencePiece tokenizer or a byte-level
BPE tokenizer.json trained here, and a
reference file with transformers' logits on a padded batch and its greedy `generate` output.
anchor-rl must reproduce both (tests/unit/test_hf_reference.cpp).

Usage: make_hf_fixtures.py OUT_DIR   (idempotent: skipped when OUT_DIR/.complete matches)
"""
import copy
import hashlib
import json
import os
import shutil
import sys

import sentencepiece as spm
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tokenizer_fixtures as tokfix  # noqa: E402

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Anchor tokens receive attention from many later tokens.",
    "Count down: 3 + 4 * 5 = 23, then 23 - 2 = 21.",
    "A sentence ends after a period. Another begins here!",
    "Reinforcement learning shapes the policy with rewards.",
    "Numbers 0 1 2 3 4 5 6 7 8 9 and symbols + - * / ( ) = .",
    "Question: what is 12 times 7? Answer: 84.",
    "def f(x): return x * 2  # a line of code",
]

ARCHS = {
    # GQA (4 query heads share 2 kv heads), tied embeddings, default rope.
    "llama_gqa_tied": dict(
        cls="llama", hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=True, rope_theta=10000.0),
    # llama3 rope scaling, untied embeddings, q/k/v/o bias, MHA.
    "llama3_rope_untied": dict(
        cls="llama", hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, tie_word_embeddings=False, attention_bias=True, rope_theta=500000.0,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                          original_max_position_embeddings=16)),
    # Qwen2 (q/k/v bias, no o bias), linear rope scaling, GQA 6 -> 2, untied.
    "qwen2_linear_rope": dict(
        cls="qwen2", hidden_size=48, intermediate_size=64, num_hidden_layers=2, num_attention_heads=6,
        num_key_value_heads=2, tie_word_embeddings=False, rope_theta=10000.0,
        rope_scaling=dict(rope_type="linear", factor=2.0)),
    # Qwen2 with a byte-level BPE tokenizer.json (NFC + Qwen2 regex, chatml special tokens).
    "qwen2_bpe": dict(
        cls="qwen2", tokenizer="bpe", hidden_size=48, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1000000.0),
    # Llama with a byte-fallback SentencePiece tokenizer: non-ASCII text becomes <0xNN> byte
    # tokens, each holding part of a UTF-8 character (the credit report must cope).
    "llama_byte_fallback": dict(
        cls="llama", tokenizer="sp_byte_fallback", hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, rope_theta=10000.0),
    # Qwen3: per-head q/k RMSNorm, head_dim (16) independent of hidden / heads (48 / 4), GQA,
    # tied embeddings, BPE tokenizer.json.
    "qwen3_tiny": dict(
        cls="qwen3", tokenizer="bpe", hidden_size=48, intermediate_size=80, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
        rope_theta=1000000.0),
}

MODEL_CLASSES = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM),
                 "qwen3": (Qwen3Config, Qwen3ForCausalLM)}


def bpe_tokenizer(out_dir):
    """A Qwen2-style tokenizer.json (+ tokenizer_config.json with chatml names): ids 0, 1, 2 are
    <|endoftext|>, <|im_start|>, <|im_end|>."""
    d = os.path.join(out_dir, "bpe_tokenizer")
    if not os.path.exists(os.path.join(d, "tokenizer.json")):
        os.makedirs(d, exist_ok=True)
        tok = tokfix.build_tokenizers()["qwen2_style"]
        tok.save(os.path.join(d, "tokenizer.json"))
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump({"tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                       "bos_token": None, "add_bos_token": False}, f, indent=1)
    return d


def train_tokenizer(out_dir):
    path = os.path.join(out_dir, "tokenizer.model")
    if os.path.exists(path):
        return path
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 4), model_prefix=os.path.join(out_dir, "tokenizer"),
        vocab_size=120, model_type="bpe", character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        hard_vocab_limit=False, minloglevel=2)
    return path


def byte_fallback_tokenizer(out_dir):
    path = os.path.join(out_dir, "byte_fallback.model")
    if not os.path.exists(path):
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(CORPUS * 4), model_prefix=os.path.join(out_dir, "byte_fallback"),
            vocab_size=330, model_type="bpe", character_coverage=1.0, byte_fallback=True, unk_id=0, bos_id=1,
            eos_id=2, pad_id=-1, hard_vocab_limit=False, minloglevel=2)
    return path


def build(name, spec, tokenizer_path, out_dir):
    torch.manual_seed(sum(map(ord, name)))
    bpe_dir = bpe_tokenizer(out_dir) if spec.get("tokenizer") == "bpe" else None
    if spec.get("tokenizer") == "sp_byte_fallback":
        tokenizer_path = byte_fallback_tokenizer(out_dir)
    if bpe_dir:
        from tokenizers import Tokenizer
        vocab = Tokenizer.from_file(os.path.join(bpe_dir, "tokenizer.json")).get_vocab_size()
    else:
        vocab = spm.SentencePieceProcessor(model_file=tokenizer_path).get_piece_size()
    kwargs = {k: v for k, v in spec.items() if k not in ("cls", "rope_scaling", "rope_theta", "tokenizer")}
    rope = {"rope_type": "default", "rope_theta": spec["rope_theta"]}
    rope.update(spec.get("rope_scaling", {}))
    Config, Model = MODEL_CLASSES[spec["cls"]]
    config = Config(vocab_size=vocab, max_position_embeddings=256, rms_norm_eps=1e-5, bos_token_id=1,
                    eos_token_id=2, rope_parameters=rope, **kwargs)
    model = Model(config).eval()
    with torch.no_grad():  # random norms and biases too, so that every weight matters
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif pname.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    model_dir = os.path.join(out_dir, name)
    model.save_pretrained(model_dir, safe_serialization=True)
    if bpe_dir:
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(bpe_dir, f), os.path.join(model_dir, f))
    else:
        shutil.copy(tokenizer_path, os.path.join(model_dir, "tokenizer.model"))

    # A padded batch: row 0 full length, row 1 left-padded by 4 (like a batched prompt).
    g = torch.Generator().manual_seed(7)
    T = 14
    input_ids = torch.randint(3, vocab, (2, T), generator=g)
    attention_mask = torch.ones(2, T, dtype=torch.long)
    attention_mask[1, :4] = 0
    input_ids[1, :4] = 0
    position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
        # Attention probabilities of layer 1 from the eager implementation, for the observer test.
        model.config._attn_implementation = "eager"
        attentions = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                           output_attentions=True).attentions[1]
        model.config._attn_implementation = "sdpa"
        gen_ids = torch.randint(3, vocab, (3, 6), generator=g)
        gen_mask = torch.ones_like(gen_ids)
        gen_ids[2, :3] = 0
        gen_mask[2, :3] = 0
        generated = model.generate(input_ids=gen_ids, attention_mask=gen_mask, max_new_tokens=24, do_sample=False,
                                   eos_token_id=2, pad_token_id=0)
    save_file({
        "input_ids": input_ids, "attention_mask": attention_mask, "logits": logits.float().contiguous(),
        "attentions_layer1": attentions.float().contiguous(),
        "gen_prompt_ids": gen_ids, "gen_prompt_mask": gen_mask,
        "greedy_tokens": generated[:, gen_ids.shape[1]:].contiguous(),
    }, os.path.join(out_dir, name + ".reference.safetensors"))
    if name == "llama_gqa_tied":
        # The same weights stored as bf16 and as shards, for the dtype / sharding readers.
        # (.to() converts in place: convert copies so every variant starts from the f32 weights.)
        copy.deepcopy(model).to(torch.bfloat16).save_pretrained(os.path.join(out_dir, name + "_bf16"),
                                                               safe_serialization=True)
        copy.deepcopy(model).to(torch.float16).save_pretrained(os.path.join(out_dir, name + "_f16"),
                                                              safe_serialization=True)
        model.save_pretrained(os.path.join(out_dir, name + "_sharded"), safe_serialization=True,
                                                max_shard_size="40KB")
        for d in ("_bf16", "_f16", "_sharded"):
            with open(tokenizer_path, "rb") as src, open(os.path.join(out_dir, name + d, "tokenizer.model"), "wb") as dst:
                dst.write(src.read())


def tokenizer_reference(tokenizer_path, out_dir):
    sp = spm.SentencePieceProcessor(model_file=tokenizer_path)
    texts = ["Hello world. Count down: 12 + 7 = 19!", "  two  spaces", "ünïcödé ✓ text", ""]
    ref = [{"text": t, "ids": sp.encode(t), "decoded": sp.decode(sp.encode(t))} for t in texts]
    with open(os.path.join(out_dir, "tokenizer_reference.json"), "w") as f:
        json.dump(ref, f, ensure_ascii=False, indent=1)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    stamp = hashlib.sha256(open(__file__, "rb").read() + open(tokfix.__file__, "rb").read()).hexdigest()
    marker = os.path.join(out_dir, ".complete")
    if os.path.exists(marker) and open(marker).read() == stamp:
        return
    tokenizer_path = train_tokenizer(out_dir)
    for name, spec in ARCHS.items():
        build(name, spec, tokenizer_path, out_dir)
    tokenizer_reference(tokenizer_path, out_dir)
    with open(marker, "w") as f:
        f.write(stamp)


if __name__ == "__main__":
    main()
