"""Starting an external reward program as a loopback HTTP server (rewards/anchor_reward.py's
`--http 0`), shared by the external-reward benchmark and its end-to-end test (import it after
putting scripts/lib on sys.path).

  start_http_reward(program, log, cwd)   (Popen, url): the program serving on a free port; its
                                         stderr goes to `log`, where it announces the URL
"""
import os
import re
import subprocess
import time


def start_http_reward(program, log, cwd, wait_seconds=20):
    server = subprocess.Popen(f"exec python3 {program} --http 0 2>{log}", shell=True, cwd=cwd)
    deadline = time.time() + wait_seconds
    while time.time() < deadline:
        time.sleep(0.05)
        m = re.search(r"serving on (http://\S+)", open(log).read()) if os.path.exists(log) else None
        if m:
            return server, m.group(1)
    server.kill()
    server.wait()
    raise SystemExit(f"the HTTP reward server {program} did not start (its log: {log})")
