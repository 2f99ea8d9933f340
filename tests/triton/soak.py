"""Soak of the Triton deployment (issue 25), run by `scripts/triton.sh soak`: for
--seconds, --concurrency client threads send a mix to a running tritonserver (whole
round trips, compress then decompress, requests whose client hangs up before the
answer, hostile inputs), while the resident memory of the server and its Python
backend stubs (where the c3 models run) is sampled every second.

Every valid answer must equal the serial one taken at the start on the idle server;
every hostile input must get 400; nothing may get a 5xx. Writes, in --out, the files
benches/soak/summary.py reads (one `minute-NN.json` a minute in c3-loadgen's layout,
`mix.json`, `rss.tsv`), so the same table, RSS growth and plot come out as for
c3-serve. Triton's models do not stream: no time to first token.

    python tests/triton/soak.py --url 127.0.0.1:8000 --server-pid PID \
        --documents models/demo-page.txt --seconds 600 --out target/soak-triton
"""

import argparse
import http.client
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from inputs import bytes_input, int_input, text_input

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--server-pid", type=int, required=True)
ap.add_argument("--documents", required=True)
ap.add_argument("--seconds", type=float, required=True)
ap.add_argument("--concurrency", type=int, default=16)
ap.add_argument("--max-new-tokens", type=int, default=48)
ap.add_argument("--out", required=True)
a = ap.parse_args()
out = Path(a.out)
out.mkdir(parents=True, exist_ok=True)
for f in list(out.glob("minute-*.json")) + [out / "rss.tsv", out / "mix.json"]:
    f.unlink(missing_ok=True)
text = open(a.documents, encoding="utf-8").read()
docs = [p.strip() for p in text.split("\n\n") if p.strip()][:8] or [text.strip()]
K = a.max_new_tokens
host, port = a.url.split(":")


def roundtrip(client, d):
    r = client.infer("c3_roundtrip", [text_input([d]), int_input("MAX_NEW_TOKENS", K)])
    summary = json.loads(r.as_numpy("SUMMARY")[0])
    return r.as_numpy("TEXT")[0].decode(), summary["output_ids"]


def decompress(client, d):
    lf = client.infer("c3_compress", [text_input([d])]).as_numpy("LATENT_FILE").tobytes()
    r = client.infer("c3_decompress", [bytes_input(lf), int_input("MAX_NEW_TOKENS", K)])
    return r.as_numpy("TEXT").reshape(-1)[0].decode()


HOSTILE = [
    ("c3_roundtrip", lambda: [text_input([""])]),
    ("c3_roundtrip", lambda: [text_input([b"ok \xff\xfe"])]),
    ("c3_roundtrip", lambda: [text_input(["Some text."]), int_input("MAX_NEW_TOKENS", 0)]),
    ("c3_roundtrip", lambda: [text_input(["Some text."]), text_input([" "], "PROMPT")]),
    ("c3_compress", lambda: [text_input(["Fine.", ""])]),
    ("c3_decompress", lambda: [bytes_input(b"\x00garbage" * 100)]),
    ("c3_decompress", lambda: [bytes_input(b"")]),
    ("c3_decompress", lambda: [bytes_input((1 << 60).to_bytes(8, "little") + b"{}")]),
]


def hang_up(d):
    """A round trip whose client closes the connection before the answer (half a
    second in: admitted and decoding). Triton's Python backend is not told: the
    request runs to its end, so hanging up faster than that only fills the queue."""
    body = json.dumps({"inputs": [
        {"name": "TEXT", "shape": [1], "datatype": "BYTES", "data": [d]},
        {"name": "MAX_NEW_TOKENS", "shape": [1], "datatype": "INT32", "data": [K]},
    ]}).encode()
    c = http.client.HTTPConnection(host, int(port), timeout=600)
    c.request("POST", "/v2/models/c3_roundtrip/infer", body=body,
              headers={"content-type": "application/json"})
    time.sleep(0.5)
    c.close()


client0 = httpclient.InferenceServerClient(a.url, network_timeout=600.0)
serial = {d: roundtrip(client0, d) for d in docs}

lock = threading.Lock()
mix = {"roundtrip": 0, "compress_decompress": 0, "cancelled_stream": 0, "hostile": 0,
       "wrong_answer": 0, "server_error": 0, "transport_error": 0, "unexpected_status": 0,
       "queue_full": 0, "examples": []}
minute = {"requests": 0, "errors": 0, "latencies": [], "tokens": 0}


def note(key, example=None):
    with lock:
        mix[key] += 1
        if example and len(mix["examples"]) < 10:
            mix["examples"].append(example)


def error(e, what):
    status = e.status() if isinstance(e, InferenceServerException) else None
    with lock:
        minute["errors"] += 1
    if status == "503" and "queue is full" in e.message():
        note("queue_full")  # back-pressure (c3-serve's 429), counted apart from failures
    elif status and str(status).startswith("5"):
        note("server_error", f"{what}: {status} {e.message()}")
    elif status:
        note("unexpected_status", f"{what}: {status} {e.message()}")
    else:
        note("transport_error", f"{what}: {type(e).__name__}: {e}")


stop_at = time.monotonic() + a.seconds


def worker(seed):
    client = httpclient.InferenceServerClient(a.url, network_timeout=600.0)
    i = seed
    while time.monotonic() < stop_at:
        d = docs[i % len(docs)]
        # One kind per thread (a quarter of the clients each), so the hang-ups'
        # half-second waits do not pace the others: they send back to back.
        kind = seed % 4
        i += 1
        t0 = time.perf_counter()
        try:
            if kind == 0:
                got = roundtrip(client, d)
                dt = time.perf_counter() - t0
                with lock:
                    minute["requests"] += 1
                    minute["latencies"].append(dt)
                    minute["tokens"] += len(got[1])
                note("roundtrip" if got == serial[d] else "wrong_answer",
                     None if got == serial[d] else "roundtrip differs from the serial answer")
            elif kind == 1:
                got = decompress(client, d)
                with lock:
                    minute["requests"] += 1
                note("compress_decompress" if got == serial[d][0] else "wrong_answer",
                     None if got == serial[d][0] else "decompress differs from the serial round trip")
            elif kind == 2:
                hang_up(d)
                note("cancelled_stream")
            else:
                model, inputs = HOSTILE[i % len(HOSTILE)]
                try:
                    client.infer(model, inputs())
                    note("unexpected_status", f"hostile input to {model} was answered 200")
                except InferenceServerException as e:
                    if e.status() == "400":
                        note("hostile")
                    else:
                        error(e, f"hostile input to {model}")
        except Exception as e:  # noqa: BLE001 - a failure of a valid request is a finding
            error(e, ["roundtrip", "compress+decompress", "hang-up"][kind])
    client.close()


def rss_kib(pid):
    """VmRSS of pid and its descendants (Triton's Python stubs are its children)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for t in os.listdir(f"/proc/{p}/task"):
                kids = open(f"/proc/{p}/task/{t}/children").read().split()
                todo.extend(int(k) for k in kids)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def percentile(values, q):
    s = sorted(values)
    return s[max(1, int(np.ceil(q / 100 * len(s)))) - 1] if s else None


threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.concurrency)]
start = time.monotonic()
for t in threads:
    t.start()
def write_minute(n, m):
    # Errors are counted by kind in mix.json only (summary.py adds its 5xx to these).
    level = {
        "concurrency": a.concurrency, "requests": m["requests"], "errors": m["errors"],
        "errors_by_kind": {}, "tokens_per_second": m["tokens"] / 60.0,
        "latency_seconds": {"p50": percentile(m["latencies"], 50), "p95": percentile(m["latencies"], 95)},
        "ttft_seconds": {"p50": None, "p95": None}, "piece_text_mismatches": 0,
    }
    (out / f"minute-{n:02d}.json").write_text(json.dumps({"levels": [level]}))


rss = open(out / "rss.tsv", "w")
n_minute, last = 0, None
while any(t.is_alive() for t in threads):
    time.sleep(1)
    now = time.monotonic() - start
    rss.write(f"{int(now)}\t{rss_kib(a.server_pid)}\n")
    rss.flush()
    if now >= 60 * (n_minute + 1):
        n_minute += 1
        with lock:
            last = dict(minute)
            minute.update({"requests": 0, "errors": 0, "latencies": [], "tokens": 0})
        write_minute(n_minute, last)
        print(f"[soak] minute {n_minute}: {last['requests']} requests, {last['errors']} errors", flush=True)
for t in threads:
    t.join()
rss.close()
# Requests that ended after the last full minute (in flight at the deadline) join it.
if last is None:
    n_minute, last = 1, {"requests": 0, "errors": 0, "latencies": [], "tokens": 0}
for k in ("requests", "errors", "latencies", "tokens"):
    last[k] = last[k] + minute[k]
write_minute(n_minute, last)
mix["documents"] = len(docs)
mix["seconds"] = a.seconds
(out / "mix.json").write_text(json.dumps(mix, indent=1))
bad = mix["wrong_answer"] + mix["server_error"] + mix["transport_error"] + mix["unexpected_status"]
print(f"mix: {mix['roundtrip']} round trips, {mix['compress_decompress']} compress+decompress, "
      f"{mix['cancelled_stream']} hung-up requests, {mix['hostile']} hostile inputs; {mix['wrong_answer']} wrong, "
      f"{mix['server_error']} 5xx, {mix['transport_error']} transport errors, "
      f"{mix['unexpected_status']} unexpected statuses, {mix['queue_full']} x queue full (503)", flush=True)
raise SystemExit(1 if bad else 0)
