"""Writes a tiny Llama checkpoint in Hugging Face format for the demo and benchmarks.

The tokenizer is a real SentencePiece model trained on synthetic arithmetic / countdown text;
the weights are random (transformers' initialisation). Usage:
    make_tiny_model.py OUT_DIR [--hidden 128 --layers 4 --heads 4 --kv-heads 2 --vocab 384 --seed 0]
"""
import argparse
import json
import os
import random

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import sentencepiece as spm  # noqa: E402
import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402


def corpus(rng, n):
    for _ in range(n):
        a, b, c = rng.randint(1, 99), rng.randint(1, 99), rng.randint(1, 9)
        yield f"Question: what is {a} plus {b} times {c}? Answer: {a + b * c}."
        nums = [rng.randint(1, 20) for _ in range(3)]
        yield f"Countdown: reach {nums[0] * nums[1] - nums[2]} with {' '.join(map(str, nums))}. " \
              f"Step: {nums[0]} * {nums[1]} = {nums[0] * nums[1]}. Step: {nums[0] * nums[1]} - {nums[2]}."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus", help="JSONL with prompt/response fields to train the tokenizer on (default: "
                                      "built-in arithmetic text)")
    ap.add_argument("--intermediate", type=int, default=0, help="MLP width (default 8/3 x hidden)")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    rng = random.Random(args.seed)
    if args.corpus:
        with open(args.corpus) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        sentences = [r["prompt"] + r.get("response", "") for r in rows]
    else:
        sentences = list(corpus(rng, 3000))
    # Identity normalisation keeps newlines (a stop string) and spacing exactly; digits are
    # split so that numbers are spelled digit by digit, which small models learn far better.
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_prefix=os.path.join(args.out_dir, "tokenizer"),
        vocab_size=args.vocab, model_type="bpe", character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        hard_vocab_limit=False, minloglevel=2, normalization_rule_name="identity", remove_extra_whitespaces=False,
        user_defined_symbols=["\n"], split_digits=True)
    os.remove(os.path.join(args.out_dir, "tokenizer.vocab"))
    vocab = spm.SentencePieceProcessor(model_file=os.path.join(args.out_dir, "tokenizer.model")).get_piece_size()
    torch.manual_seed(args.seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=args.hidden,
                         intermediate_size=args.intermediate or args.hidden * 8 // 3,
                         num_hidden_layers=args.layers, num_attention_heads=args.heads,
                         num_key_value_heads=args.kv_heads, max_position_embeddings=1024, rms_norm_eps=1e-5,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(args.out_dir, safe_serialization=True)
    print(f"wrote {args.out_dir}: {sum(p.numel() for p in LlamaForCausalLM(config).parameters()) / 1e6:.2f}M "
          f"parameters, vocab {vocab}")


if __name__ == "__main__":
    main()
