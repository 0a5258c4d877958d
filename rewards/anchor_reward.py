"""Turn a plain Python function into an anchor-rl external reward program.

    # my_reward.py
    from anchor_reward import serve

    def reward(row):                      # row: prompt, completion, completion_tokens,
        return float("42" in row["completion"])   # finish_reason, max_new_tokens, example

    serve(reward)

    # config:  reward: {components: [{name: external, command: "python3 my_reward.py"}]}
    # or run it as an HTTP server:  python3 my_reward.py --http 8000
    #          reward: {components: [{name: external, url: "http://127.0.0.1:8000/score"}]}

`reward(row)` returns a number, or a dict {"score": x, "sub_scores": {name: y}, "note": "..."}
(declare the sub-score names in the component's `sub_scores`). With `batched=True` the
function gets the whole list of rows and returns a list. The protocol itself (one JSON line
per batch, version 1) is in rewards/README.md; this module needs only the standard library.
Copy it next to your script, or put anchor-rl's rewards/ directory on PYTHONPATH.

Anything the function prints goes to stderr (anchor-rl writes it to the run's log): stdout
carries only the answers. An exception becomes an error answer that stops the run with the
exception's message; the program itself keeps running.
"""

import argparse
import json
import math
import sys
import traceback

PROTOCOL = 1


def _number(x, where):
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"{where}: expected a number, got {type(x).__name__} {x!r}")
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def answer_for(results):
    """The answer object for a list of per-row results (numbers or dicts)."""
    scores, notes, subs = [], [], {}
    for i, r in enumerate(results):
        if isinstance(r, dict):
            unknown = set(r) - {"score", "sub_scores", "note"}
            if unknown:
                raise ValueError(f"row {i}: unknown keys {sorted(unknown)} (expected score, sub_scores, note)")
            scores.append(_number(r.get("score"), f"row {i}: score"))
            notes.append(r.get("note"))
            for name, value in (r.get("sub_scores") or {}).items():
                subs.setdefault(name, [None] * len(results))[i] = _number(value, f"row {i}: sub_scores.{name}")
        else:
            scores.append(_number(r, f"row {i}"))
            notes.append(None)
    answer = {"scores": scores}
    if subs:
        for name, values in subs.items():
            missing = [i for i, v in enumerate(values) if v is None]
            if missing:
                raise ValueError(f"sub-score '{name}' is missing for rows {missing[:10]}")
        answer["sub_scores"] = subs
    if any(n is not None for n in notes):
        answer["notes"] = [None if n is None else str(n) for n in notes]
    return answer


def handle(request, reward, batched):
    """Answers one request object (the protocol's request) with the protocol's answer object."""
    try:
        if request.get("protocol") != PROTOCOL:
            raise ValueError(f"this helper speaks protocol {PROTOCOL}, the request has {request.get('protocol')!r}")
        rows = request["rows"]
        results = list(reward(rows)) if batched else [reward(row) for row in rows]
        if len(results) != len(rows):
            raise ValueError(f"the batched reward returned {len(results)} results for {len(rows)} rows")
        return answer_for(results)
    except Exception as e:  # the trainer stops with this message; this program keeps running
        first = f"{type(e).__name__}: {e}".replace("\n", " ")
        return {"error": first + "\n" + traceback.format_exc()}


def _serve_stdio(reward, batched):
    out = sys.stdout
    sys.stdout = sys.stderr  # print() in the reward function must not corrupt the answers
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError as e:
            answer = {"error": f"the request is not JSON: {e}"}
        else:
            answer = handle(request, reward, batched)
        out.write(json.dumps(answer, allow_nan=False) + "\n")
        out.flush()


def _serve_http(reward, batched, host, port):
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the trainer reuses one connection

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            try:
                request = json.loads(body)
            except json.JSONDecodeError as e:
                return self._send(400, f"the request is not JSON: {e}\n".encode())
            answer = handle(request, reward, batched)
            if "error" in answer:
                return self._send(500, answer["error"].encode())
            self._send(200, json.dumps(answer, allow_nan=False).encode(), "application/json")

        def _send(self, status, payload, content_type="text/plain; charset=utf-8"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, fmt, *args):  # one line per request would drown the log
            pass

    server = HTTPServer((host, port), Handler)
    print(f"anchor_reward: serving on http://{host}:{server.server_address[1]}/score", file=sys.stderr, flush=True)
    server.serve_forever()


def serve(reward, batched=False, argv=None):
    """Runs the reward program: stdin/stdout by default, an HTTP server with --http PORT."""
    parser = argparse.ArgumentParser(description="an anchor-rl external reward program")
    parser.add_argument("--http", type=int, metavar="PORT", help="serve POST requests on this port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind with --http (default 127.0.0.1)")
    args, _ = parser.parse_known_args(argv)
    if args.http is not None:
        _serve_http(reward, batched, args.host, args.http)
    else:
        _serve_stdio(reward, batched)
