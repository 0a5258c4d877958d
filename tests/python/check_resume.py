"""End-to-end trainer checks.

Exact resume: N steps straight == N/2 steps, an interruption, and --resume latest for the rest.

Runs `anchor-rl train` (and `anchor-rl sft`, in each sft.mode) on the shipped demo model and countdown data
twice; the final weights and optimizer state must be bit-identical and every metrics line
identical once the wall-clock timings under "perf" are removed. Then every algorithm switch
(KL in loss / reward, PPO epochs and mini-batches, dual clip, RLOO, REINFORCE++, Dr. GRPO,
aggregations) runs two steps and logs finite metrics.
Usage: check_resume.py ANCHOR_RL_BINARY SCRATCH_DIR
"""
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))
from run_files import checkpoint_bytes, first_difference, metrics  # noqa: E402


def run(binary, args):
    out = subprocess.run([binary] + args, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"FAIL: anchor-rl {' '.join(args)} exited with {out.returncode}")


def check(binary, scratch, command, config, steps, extra, name=None):
    name = name or command
    straight, resumed = os.path.join(scratch, name + "-straight"), os.path.join(scratch, name + "-resumed")
    for d in (straight, resumed):
        shutil.rmtree(d, ignore_errors=True)
    common = [command, config, "--set", f"train.steps={steps}"] + extra
    run(binary, common + ["--run-dir", straight])
    run(binary, common + ["--run-dir", resumed, "--stop-after-step", str(steps // 2)])
    run(binary, common + ["--run-dir", resumed, "--resume", "latest"])
    a, b = metrics(straight), metrics(resumed)
    if a != b:
        x, y = first_difference(a, b)
        print("straight:", x, "\nresumed: ", y)
        raise SystemExit(f"FAIL: {name}: metrics differ between the straight and the resumed run")
    fa, fb = checkpoint_bytes(straight, steps), checkpoint_bytes(resumed, steps)
    for file in fa:
        if fa[file] != fb[file]:
            raise SystemExit(f"FAIL: {name}: {file} of step {steps} differs after resume")
    print(f"{name}: {steps} straight steps == {steps // 2} + resume: {len(a)} metrics lines and final "
          f"weights/optimizer identical")


def check_options(binary, scratch):
    """Every algorithm switch runs end to end and logs finite metrics (KL needs the reference)."""
    import math
    variants = {
        "kl-loss-ppo": ["--set", "algo.kl_coef=0.05", "--set", "algo.kl_estimator=k3", "--set", "algo.ppo_epochs=2",
                        "--set", "algo.mini_batches=2", "--set", "algo.dual_clip=3", "--set", "algo.entropy_coef=0.01"],
        "kl-reward-rloo": ["--set", "algo.kl_coef=0.05", "--set", "algo.kl_in=reward", "--set", "algo.kl_estimator=k1",
                           "--set", "algo.advantage=rloo", "--set", "algo.loss_agg=seq_mean_token_sum_norm"],
        "drgrpo-nodyn": ["--set", "algo.normalize_std=false", "--set", "algo.dynamic_sampling=false",
                         "--set", "algo.loss_agg=seq_mean_token_mean", "--set", "optim.schedule=cosine"],
        "reinforce-pp": ["--set", "algo.advantage=reinforce_pp", "--set", "algo.dynamic_sampling=false"],
        "credit-random": ["--set", "credit.strategy=random"],
        "credit-entropy": ["--set", "credit.strategy=entropy"],
        "credit-local-chunk": ["--set", "credit.strategy=local_chunk", "--set", "credit.layers=all"],
        "credit-global-anchor": ["--set", "credit.strategy=global_anchor", "--set", "credit.head_ranking=sequence"],
        "credit-coupled": ["--set", "credit.strategy=coupled", "--set", "credit.sign=positive_only",
                           "--set", "credit.chunk_rows=7"],
        "credit-thought-anchor": ["--set", "credit.strategy=thought_anchor", "--set", "credit.proximity=1"],
        "credit-value-norm": ["--set", "credit.strategy=coupled", "--set", "credit.attention_weighting=value_norm"],
        "forking-tokens": ["--set", "credit.strategy=forking_tokens"],
        "gtpo": ["--set", "credit.strategy=gtpo"],
        # LoRA off-policy: PPO epochs x mini-batches score the old policy with the adapters on and
        # the KL reference (in the reward) with them off.
        "lora-kl-reward-ppo": ["--set", "model.lora.enabled=true", "--set", "model.lora.rank=4",
                               "--set", "algo.kl_coef=0.05", "--set", "algo.kl_in=reward", "--set", "algo.ppo_epochs=2",
                               "--set", "algo.mini_batches=2", "--set", "optim.lr=3e-3"],
    }
    for name, extra in variants.items():
        run_dir = os.path.join(scratch, "options-" + name)
        shutil.rmtree(run_dir, ignore_errors=True)
        run(binary, ["train", "configs/demo.yaml", "--run-dir", run_dir, "--set", "train.steps=2",
                     "--set", "rollout.prompts_per_step=4", "--set", "rollout.samples_per_prompt=4",
                     "--set", "data.eval=", "--set", "algo.micro_batch_size=8"] + extra)
        lines = metrics(run_dir)
        last = lines[-1]
        for key in ("reward_mean", "entropy", "clip_fraction", "grad_norm", "pg_loss", "logprob_mismatch"):
            if not (key in last and math.isfinite(last[key])):
                raise SystemExit(f"FAIL: options {name}: metric {key} missing or not finite: {last}")
        if "kl" in name and not ("kl_ref" in last and math.isfinite(last["kl_ref"])):
            raise SystemExit(f"FAIL: options {name}: kl_ref not logged although algo.kl_coef > 0")
        if last["logprob_mismatch"] > 1e-3:
            raise SystemExit(f"FAIL: options {name}: sampler and trainer log-probs disagree ({last['logprob_mismatch']})")
        expected_updates = 4 if name in ("kl-loss-ppo", "lora-kl-reward-ppo") else 1
        if last["optimizer_updates"] not in (0, expected_updates):
            raise SystemExit(f"FAIL: options {name}: {last['optimizer_updates']} optimizer updates, expected {expected_updates}")
        if name.startswith("credit-") and last["optimizer_updates"] > 0:
            share = last.get("credit", {}).get("amplified_share", 0.0)
            if not 0.0 < share < 1.0:
                raise SystemExit(f"FAIL: options {name}: amplified_share {share} should lie in (0, 1): {last}")
            if name != "credit-random" and name != "credit-entropy" and not math.isfinite(last["credit"]["waad_mean"]):
                raise SystemExit(f"FAIL: options {name}: waad_mean not finite: {last}")
        if name == "forking-tokens" and last["optimizer_updates"] > 0:
            share = last["credit"]["gradient_share"]
            if not 0.15 <= share <= 0.35:
                raise SystemExit(f"FAIL: options {name}: gradient_share {share}, expected about 0.2: {last}")
        print(f"options {name}: ok (kl_ref={last.get('kl_ref')}, updates={last['optimizer_updates']}, "
              f"credit={last.get('credit')})")


def check_lora(binary, scratch, small, sft):
    """LoRA resumes exactly too: RL with adapter dropout (its masks come from the step's seed) and
    the KL reference = the base with adapters off; SFT's control-token rows trained beside the
    adapters. Checkpoints hold adapters only, and export --merge turns one into a model."""
    lora = ["--set", "model.lora.enabled=true", "--set", "model.lora.rank=4", "--set", "model.lora.alpha=8",
            "--set", "optim.lr=3e-3"]
    check(binary, scratch, "train", "configs/demo.yaml", 4,
          small + lora + ["--set", "model.lora.dropout=0.1", "--set", "algo.kl_coef=0.05",
                          "--set", "credit.strategy=coupled"], name="train-lora")
    last = metrics(os.path.join(scratch, "train-lora-straight"))[-1]
    if not (last.get("kl_ref", 0) > 0 and last["optimizer_updates"] > 0):
        raise SystemExit(f"FAIL: train-lora: expected updates and a positive KL to the base: {last}")
    check(binary, scratch, "sft", "configs/demo_sft.yaml", 6,
          sft + lora + ["--set", "sft.mode=conditional", "--set", "model.lora.target_modules=[q_proj, v_proj]"],
          name="sft-lora-conditional")
    ckpt = os.path.join(scratch, "sft-lora-conditional-straight", "checkpoints", "step-00000006")
    files = sorted(os.listdir(ckpt))
    if "config.json" in files or "adapter_model.safetensors" not in files:
        raise SystemExit(f"FAIL: sft-lora-conditional: the checkpoint should hold adapters, not a model: {files}")
    with open(os.path.join(ckpt, "adapter_config.json")) as f:
        tokens = json.load(f).get("trainable_token_indices")
    if not tokens or len(tokens) != 2:
        raise SystemExit(f"FAIL: sft-lora-conditional: <|good|> and <|bad|> rows should train, got {tokens}")
    # The other two SFT modes with adapters: plain (no new token) and the indicator ([IND]'s row).
    for mode in ("plain", "context_indicator"):
        run_dir = os.path.join(scratch, f"sft-lora-{mode}")
        shutil.rmtree(run_dir, ignore_errors=True)
        run(binary, ["sft", "configs/demo_sft.yaml", "--run-dir", run_dir, "--set", "train.steps=2",
                     "--set", f"sft.mode={mode}"] + sft + lora)
        with open(os.path.join(run_dir, "checkpoints", "step-00000002", "adapter_config.json")) as f:
            rows = json.load(f).get("trainable_token_indices")
        if (rows is None) != (mode == "plain") or not metrics(run_dir)[-1].get("loss", 1.0) < 1e9:
            raise SystemExit(f"FAIL: sft-lora-{mode}: token rows {rows}, last line {metrics(run_dir)[-1]}")
        print(f"sft-lora-{mode}: 2 steps, trainable token rows {rows}")
    merged = os.path.join(scratch, "sft-lora-conditional-merged")
    shutil.rmtree(merged, ignore_errors=True)
    run(binary, ["export", "--merge", os.path.join(scratch, "sft-lora-conditional-straight"), "--out", merged])
    outputs = []
    for model in (ckpt, merged):
        out = subprocess.run([binary, "generate", "--model", model, "--prompt", "Numbers: 3 5 7. Target: 22.\n",
                              "--max-new-tokens", "16", "--greedy", "--control", "good", "--output", "jsonl"],
                             cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"FAIL: generate --model {model}: {out.stderr}")
        outputs.append(json.loads(out.stdout.splitlines()[0])["token_ids"])
    if outputs[0] != outputs[1]:
        raise SystemExit(f"FAIL: the merged export answers differently from its adapters: {outputs}")
    print(f"sft-lora-conditional: adapters + token rows {tokens}; export --merge answers the same: {outputs[0]}")


def check_conditioned_rl(binary, scratch):
    """A conditionally trained model (and an indicator-trained one) is RL-fine-tuned and evaluated
    while conditioned on <|good|> (with [IND]): rollouts start after the control token, and no
    <|bad|> / [IND] is ever sampled."""
    import math
    cond = os.path.join(scratch, "sft-conditional-straight", "checkpoints", "step-00000006")
    ind = os.path.join(scratch, "sft-context-indicator-straight", "checkpoints", "step-00000006")
    for name, model, extra in (("rl-control-good", cond, ["--set", "rollout.control=good"]),
                               ("rl-indicator", ind, ["--set", "rollout.indicator=true"])):
        run_dir = os.path.join(scratch, name)
        shutil.rmtree(run_dir, ignore_errors=True)
        run(binary, ["train", "configs/demo.yaml", "--init-from", model, "--run-dir", run_dir, "--set", "train.steps=2",
                     "--set", "rollout.prompts_per_step=4", "--set", "rollout.samples_per_prompt=4",
                     "--set", "data.eval_limit=4", "--set", "algo.micro_batch_size=8"] + extra)
        last = metrics(run_dir)[-1]
        if not (math.isfinite(last["reward_mean"]) and "eval" in last):
            raise SystemExit(f"FAIL: {name}: {last}")
        print(f"{name}: 2 RL steps from {os.path.basename(os.path.dirname(os.path.dirname(model)))}, "
              f"reward_mean {last['reward_mean']:.3f}, eval accuracy {last['eval']['accuracy']:.3f}")
    out = subprocess.run([binary, "generate", "--model", cond, "--prompt", "Numbers: 3 5 7. Target: 22.\n",
                          "--num-samples", "8", "--max-new-tokens", "24", "--control", "good", "--output", "jsonl",
                          "--seed", "1"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"FAIL: generate --control good: {out.stderr}")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    if any("<|" in r["completion"] for r in rows) or len(rows) != 8:
        raise SystemExit(f"FAIL: generate --control good shows control tokens: {rows}")
    # <|bad|> (the second added token) is never sampled.
    with open(os.path.join(cond, "tokenizer_config.json")) as f:
        decoder = json.load(f)["added_tokens_decoder"]
    bad = int(next(k for k, v in decoder.items() if v["content"] == "<|bad|>"))
    if any(bad in r["token_ids"] for r in rows):
        raise SystemExit("FAIL: generate --control good sampled <|bad|>")
    print("generate --control good: 8 samples, no <|bad|>, no control token in the text")


def main():
    binary, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    small = ["--set", "rollout.prompts_per_step=4", "--set", "rollout.samples_per_prompt=4",
             "--set", "algo.micro_batch_size=6", "--set", "data.eval_limit=4", "--set", "train.eval_every=2",
             "--set", "checkpoint.every=0", "--set", "optim.warmup_steps=1", "--set", "optim.schedule=cosine"]
    check(binary, scratch, "train", "configs/demo.yaml", 4, small)
    # Credit maps change the update; thought anchors carry a running receiver-head estimate
    # across steps that the checkpoint must restore.
    check(binary, scratch, "train", "configs/demo.yaml", 4,
          small + ["--set", "credit.strategy=thought_anchor", "--set", "credit.proximity=1",
                   "--set", "credit.receiver_heads=3"], name="train-thought-anchor")
    # credit.layers: auto chooses 2 of the 4 layers on the first step; the resumed half must
    # observe the same ones (read back from the checkpoint), not choose again.
    check(binary, scratch, "train", "configs/demo.yaml", 4,
          small + ["--set", "credit.strategy=coupled", "--set", "credit.layers=auto",
                   "--set", "credit.auto_layer_count=2", "--set", "credit.sinks=exclude"], name="train-coupled")
    with open(os.path.join(scratch, "train-coupled-resumed", "checkpoints", "step-00000004", "trainer_state.json")) as f:
        chosen = json.load(f)["extra"].get("credit_layers")
    if not chosen or len(chosen) != 2:
        raise SystemExit(f"FAIL: train-coupled: the checkpoint should carry 2 auto-chosen layers, has {chosen}")
    print(f"train-coupled: auto layers {chosen} carried across the resume")
    sft = ["--set", "sft.batch_size=8", "--set", "data.eval_limit=2", "--set", "train.eval_every=3",
           "--set", "model.path=data/demo-model", "--set", "checkpoint.every=0"]
    check(binary, scratch, "sft", "configs/demo_sft.yaml", 6, sft)
    # The SFT modes: the resumed half prepares the same data (scores, labels, dropped tokens,
    # flagged turns) and must not re-initialise the added tokens' embedding rows.
    check(binary, scratch, "sft", "configs/demo_sft.yaml", 6,
          sft + ["--set", "sft.mode=conditional", "--set", "sft.conditional.unconditioned_fraction=0.2"],
          name="sft-conditional")
    check(binary, scratch, "sft", "configs/demo_sft.yaml", 6,
          sft + ["--set", "sft.mode=context_indicator", "--set", "sft.context_indicator.beta=0.5"],
          name="sft-context-indicator")
    for name, token in (("sft-conditional", "<|good|>"), ("sft-context-indicator", "[IND]")):
        with open(os.path.join(scratch, name + "-resumed", "sft_data.jsonl")) as f:
            if token not in f.read():
                raise SystemExit(f"FAIL: {name}: the prepared data has no {token}")
    check_lora(binary, scratch, small, sft)
    check_conditioned_rl(binary, scratch)
    check_options(binary, scratch)


if __name__ == "__main__":
    main()
