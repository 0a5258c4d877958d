"""`anchor-rl ablate` end to end on the demo model.

1. A clean sweep (3 arms x 2 seeds, two runs at once) finishes with a result file per run, a
   report whose step-0 differences are exactly 0 (every arm starts from the same weights), the
   Markdown table and the PNG.
2. The same study killed with SIGKILL mid-sweep: its children checkpoint and exit (they get
   SIGTERM when the command dies), and running the same command again skips the finished runs
   (their result files untouched), resumes the interrupted ones, and ends with the same report
   as the clean sweep.
3. start_eval: shared: one run evaluates the starting weights, the others skip it and carry its value.
4. A result file made with another config is refused by name; a bad spec names its key.
5. --parallel N whose N planned peaks exceed the machine's memory is refused before any run.
Usage: check_ablate.py ANCHOR_RL_BINARY SCRATCH_DIR
"""
import fcntl
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SPEC = """name: demo_check
base: configs/demo.yaml
set: [rollout.prompts_per_step=8, rollout.samples_per_prompt=4, algo.dynamic_sampling=false,
      data.eval_limit=16, train.eval_samples=1, checkpoint.every=1, checkpoint.keep_last=2,
      logging.tensorboard=false]
arms:
  - {{name: none, control: true}}
  - {{name: clip_high, set: [algo.clip_high=0.4]}}
  - {{name: random, set: [credit.strategy=random]}}
seeds: [0, 1]
steps: 10
eval_every: 5
threshold: 0.3
ledger: {ledger}
runs: {runs}
"""


def write_spec(scratch, name):
    path = os.path.join(scratch, name + ".yaml")
    with open(path, "w") as f:
        f.write(SPEC.format(ledger=os.path.join(scratch, name, "ledger"), runs=os.path.join(scratch, name, "runs")))
    return path


def ablate(binary, spec, *extra, check=True, parallel=2):
    out = subprocess.run([binary, "ablate", spec, "--parallel", str(parallel), "--threads", "2", "--python", sys.executable,
                          *extra], cwd=ROOT, capture_output=True, text=True)
    if check and out.returncode != 0:
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"FAIL: anchor-rl ablate {spec} exited with {out.returncode}")
    return out


def comparable(report):
    """The report without what may differ between two sweeps of the same study (nothing, today)."""
    return json.dumps(report, sort_keys=True)


def locks_free(runs):
    for path in glob.glob(os.path.join(runs, "*", "*.lock")):
        with open(path) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
            except BlockingIOError:
                return False
    return True


def main():
    binary, scratch = sys.argv[1], sys.argv[2]
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)

    # 1. Clean sweep.
    clean = write_spec(scratch, "clean")
    ablate(binary, clean)
    ledger = os.path.join(scratch, "clean", "ledger")
    results = sorted(glob.glob(os.path.join(ledger, "runs", "*", "seed-*.json")))
    assert len(results) == 6, results
    result = json.load(open(results[0]))
    for key in ("arm", "seed", "model", "commit", "config_hash", "curve", "train_seconds", "steps"):
        assert key in result, f"result file lacks {key}: {sorted(result)}"
    assert [p["step"] for p in result["curve"]] == [0, 5, 10], result["curve"]
    assert result["eval_problems"] == 16, result
    report = json.load(open(os.path.join(ledger, "report.json")))
    starts = [d for d in report["differences"] if d["metric"] == "start_accuracy"]
    assert len(starts) == 2 and all(x == 0.0 for d in starts for x in d["per_seed"]), starts
    assert all(len(a["seeds"]) == 2 and a["steps"] == [0, 5, 10] for a in report["arms"]), report["arms"]
    table = open(os.path.join(ledger, "report.md")).read()
    assert "| none (control) | 2 |" in table and "| clip_high | 2 |" in table, table
    assert os.path.getsize(os.path.join(ledger, "curves.png")) > 1000
    # Each run's training curve is kept beside its result: every step, as its metrics.jsonl logged it.
    trainings = sorted(glob.glob(os.path.join(ledger, "training", "*", "seed-*.json")))
    assert len(trainings) == 6, trainings
    training = json.load(open(trainings[0]))
    arm, seed = training["arm"], training["seed"]
    assert training["step"] == list(range(1, 11)), training["step"]
    logged = {}
    for line in open(os.path.join(scratch, "clean", "runs", arm, f"seed-{seed}", "metrics.jsonl")):
        j = json.loads(line)
        if "perf" in j:
            logged[j["step"]] = j
    assert training["entropy"] == [logged[s]["entropy"] for s in range(1, 11)], training
    assert training["response_length"] == [logged[s]["response_length"] for s in range(1, 11)], training
    assert training["grad_norm"] == [logged[s]["grad_norm"] for s in range(1, 11)], training
    assert "Training side" in table and all(a.get("training", {}).get("window") == 3 for a in report["arms"]), table
    # A ledger written before training curves existed: --report adds them from the run directories.
    before_bytes = open(trainings[0], "rb").read()
    os.remove(trainings[0])
    out = ablate(binary, clean, "--report")
    assert "training curves of 1 finished runs added" in out.stderr + out.stdout, out.stderr + out.stdout
    assert open(trainings[0], "rb").read() == before_bytes, "FAIL: the added training curve differs"
    print("clean sweep: 6 result files and training curves, step-0 differences exactly 0, report.md and curves.png")

    # 2. Killed mid-sweep, then the same command again.
    killed = write_spec(scratch, "killed")
    kledger, kruns = os.path.join(scratch, "killed", "ledger"), os.path.join(scratch, "killed", "runs")
    proc = subprocess.Popen([binary, "ablate", killed, "--parallel", "2", "--threads", "2", "--python", sys.executable],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline:
        done = glob.glob(os.path.join(kledger, "runs", "*", "seed-*.json"))
        started = [d for d in glob.glob(os.path.join(kruns, "*", "seed-*")) if os.path.isdir(d)
                   and os.path.exists(os.path.join(d, "checkpoints", "latest"))
                   and not os.path.exists(os.path.join(kledger, "runs", os.path.basename(os.path.dirname(d)),
                                                       os.path.basename(d) + ".json"))]
        if done and started:
            break
        if proc.poll() is not None:
            raise SystemExit("FAIL: the sweep finished before it could be killed; make the runs longer")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p: os.path.getmtime(p) for p in glob.glob(os.path.join(kledger, "runs", "*", "seed-*.json"))}
    deadline = time.time() + 300
    while not locks_free(kruns):  # the children checkpoint and exit after SIGTERM
        assert time.time() < deadline, "FAIL: the runs of a killed sweep did not stop"
        time.sleep(0.2)
    assert 0 < len(before) < 6, before
    out = ablate(binary, killed)
    assert "resuming from step" in out.stderr + out.stdout, out.stderr
    for path, mtime in before.items():
        assert os.path.getmtime(path) == mtime, f"FAIL: {path} was rewritten: a finished run ran again"
    rep_killed = json.load(open(os.path.join(kledger, "report.json")))
    if comparable(rep_killed) != comparable(report):
        raise SystemExit("FAIL: the killed and resumed sweep's report differs from the clean sweep's")
    print(f"killed sweep: {len(before)} runs kept, the rest resumed; the same report as the clean sweep")

    # 3. start_eval: shared — one run evaluates the starting weights, the others skip it and use
    #    its result (greedy evaluation, the same in every arm).
    shared = os.path.join(scratch, "shared.yaml")
    with open(clean) as f, open(shared, "w") as g:
        g.write(f.read().replace("train.eval_samples=1,", "train.eval_samples=1, train.eval_temperature=0,")
                .replace("/clean/", "/shared/").replace("seeds: [0, 1]", "seeds: [0]") + "start_eval: shared\n")
    ablate(binary, shared, parallel=1)
    sledger = os.path.join(scratch, "shared", "ledger")
    start = json.load(open(os.path.join(sledger, "start_eval.json")))
    kinds = sorted(json.load(open(p))["start_eval"] for p in glob.glob(os.path.join(sledger, "runs", "*", "*.json")))
    assert kinds == ["own", "shared", "shared"], kinds
    for p in glob.glob(os.path.join(sledger, "runs", "*", "*.json")):
        curve = json.load(open(p))["curve"]
        assert curve[0] == {"step": 0, "accuracy": start["accuracy"]}, (p, curve, start)
    skipped = [json.loads(l) for d in glob.glob(os.path.join(scratch, "shared", "runs", "*", "seed-0"))
               for l in open(os.path.join(d, "metrics.jsonl")) if '"step": 0' in l or '"step":0' in l]
    assert sum(1 for l in skipped if l.get("eval_skipped")) == 2, skipped
    ablate(binary, shared, "--report")
    print(f"start_eval shared: one run evaluated step 0 ({start['accuracy']}), two skipped it and carry its value")

    # 4. A ledger made with another config, and a bad spec.
    changed = clean.replace(".yaml", "-changed.yaml")
    with open(clean) as f, open(changed, "w") as g:
        g.write(f.read().replace("algo.clip_high=0.4", "algo.clip_high=0.5"))
    out = ablate(binary, changed, "--report", check=False)
    assert out.returncode == 1 and "made with another config" in out.stderr and "clip_high" in out.stderr, out.stderr
    bad = os.path.join(scratch, "bad.yaml")
    with open(clean) as f, open(bad, "w") as g:
        g.write(f.read().replace("threshold:", "treshold:"))
    out = ablate(binary, bad, check=False)
    assert out.returncode == 1 and "treshold: unknown key" in out.stderr, out.stderr
    print("a changed config and a misspelt key are refused by name")

    # 5. More runs at once than memory holds: refused by the memory plan before any run starts.
    crowded = clean.replace(".yaml", "-crowded.yaml")
    with open(clean) as f, open(crowded, "w") as g:
        g.write(f.read().replace("/clean/", "/crowded/"))
    out = ablate(binary, crowded, check=False, parallel=100000)
    assert out.returncode == 1 and "ablate --parallel 100000: the memory plan of" in out.stderr \
        and "Use --parallel " in out.stderr, out.stderr
    assert not os.path.exists(os.path.join(scratch, "crowded")), "runs started before the memory check"
    print("--parallel beyond memory: " + out.stderr.strip().splitlines()[-1][:160])


if __name__ == "__main__":
    main()
