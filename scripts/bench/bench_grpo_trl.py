"""TRL's GRPOTrainer side of scripts/bench/bench_grpo_step.py: a few GRPO steps with the same model,
prompts, group size, token budget, learning rate and loss as the anchor-rl run, on CPU, printing
one JSON line with the seconds of each optimizer step, generated tokens and peak RSS.

Runs in a separate environment that has TRL (scripts/bench/bench_grpo_step.py makes it: TRL is not a
dependency of anchor-rl). Not meant to be run by hand.

    bench_grpo_trl.py --model DIR --data FILE.jsonl --prompts 8 --samples 8 --max-new-tokens 128
                      --micro-batch 16 --steps 3 --threads 2 [--gradient-checkpointing]
"""
import argparse
import json
import os
import re
import sys
import tempfile
import time

from bench_generate import peak_rss_mb  # same directory (run as a script)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def last_number(text):
    found = re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    return found[-1] if found else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--micro-batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-6)
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--plain", action="store_true", help="rows have a plain-text 'prompt' (no chat template)")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    rows = [json.loads(l) for l in open(args.data)]
    data = Dataset.from_list([{"prompt": r["prompt"] if args.plain else r["messages"], "answer": str(r["answer"])}
                              for r in rows])
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)

    def correct(completions, answer, **_):
        out = []
        for c, a in zip(completions, answer):
            text = c[-1]["content"] if isinstance(c, list) else c
            out.append(1.0 if last_number(text) == a else 0.0)
        return out

    batch = args.prompts * args.samples
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-bench-"), use_cpu=True, bf16=False, report_to="none",
        per_device_train_batch_size=args.micro_batch, gradient_accumulation_steps=batch // args.micro_batch,
        num_generations=args.samples, max_completion_length=args.max_new_tokens, temperature=1.0, top_p=1.0,
        top_k=0, beta=0.0, loss_type="dapo", epsilon=0.2, epsilon_high=0.28, num_iterations=1,
        learning_rate=args.lr, max_steps=args.steps, logging_steps=1, save_strategy="no",
        gradient_checkpointing=args.gradient_checkpointing, use_vllm=False, seed=0, dataloader_num_workers=0)

    step_times, tokens = [], []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            step_times.append(time.perf_counter() - self.t0)

        def on_log(self, _args, _state, _control, logs=None, **k):
            if logs and "completions/mean_length" in logs:
                tokens.append(logs["completions/mean_length"] * batch)

    trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=correct, args=config, train_dataset=data,
                          callbacks=[Timer()])
    trainer.train()
    print(json.dumps({"step_seconds": step_times, "generated_tokens": tokens, "peak_rss_mb": peak_rss_mb()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
