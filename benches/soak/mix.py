#!/usr/bin/env python3
"""The soak test's request mix beside c3-loadgen's streamed round trips (stdlib only):
whole round trips, compress then decompress, streams cancelled after their first
piece, and hostile bodies. Every valid answer is compared with the serial one taken
at the start, on an idle server; every hostile body must get a 4xx. Writes a JSON
summary; exit 1 on any 5xx, wrong answer or transport error.

  mix.py --url http://127.0.0.1:PORT --documents FILE --seconds S --out mix.json"""
import argparse, http.client, json, sys, threading, time
from urllib.parse import urlparse

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--documents", required=True)
ap.add_argument("--seconds", type=float, required=True)
ap.add_argument("--threads", type=int, default=4)
ap.add_argument("--max-new-tokens", type=int, default=48)
ap.add_argument("--out", required=True)
a = ap.parse_args()
u = urlparse(a.url)
text = open(a.documents, encoding="utf-8").read()
docs = [p.strip() for p in text.split("\n\n") if p.strip()][:8] or [text.strip()]
K = a.max_new_tokens


def call(method, path, body=None, raw=None, timeout=600):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    c.request(method, path, body=data, headers={"content-type": "application/json"})
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, out


def roundtrip(d):
    s, b = call("POST", "/v1/roundtrip", {"text": d, "max_new_tokens": K})
    return s, (json.loads(b) if s == 200 else b)


# Serial answers on the idle server: what every later answer must equal.
serial = {}
for d in docs:
    s, r = roundtrip(d)
    if s != 200:
        sys.exit(f"mix: the serial round trip failed: {s} {r}")
    serial[d] = r["output_ids"], r["text"]

HOSTILE = [
    b"not json", b"", b'{"text": ""}', b'{"text": 5}', b'{"text": "x", "max_new_tokens": 0}',
    b'{"text": "x", "prompt": "  "}', b'{"documents": []}', b'{"latent_file": "%%%"}',
    b'{"text": "\\ud800"}', b"{" * 10000, b'{"text": "' + b"a" * 200000 + b'"}',
]
PATHS = {b'{"documents": []}': "/v1/compress", b'{"latent_file": "%%%"}': "/v1/decompress"}

lock = threading.Lock()
stats = {"roundtrip": 0, "compress_decompress": 0, "cancelled_stream": 0, "hostile": 0,
         "wrong_answer": 0, "server_error": 0, "transport_error": 0, "unexpected_status": 0,
         "examples": []}


def note(key, example=None):
    with lock:
        stats[key] += 1
        if example and len(stats["examples"]) < 10:
            stats["examples"].append(example)


def worker(seed):
    i = seed
    stop = time.monotonic() + a.seconds
    while time.monotonic() < stop:
        d = docs[i % len(docs)]
        kind = i % 4
        i += 1
        try:
            if kind == 0:
                s, r = roundtrip(d)
                if s >= 500:
                    note("server_error", f"roundtrip {s}")
                elif s != 200:
                    note("unexpected_status", f"roundtrip {s}")
                elif (r["output_ids"], r["text"]) != serial[d]:
                    note("wrong_answer", "roundtrip differs from the serial answer")
                else:
                    note("roundtrip")
            elif kind == 1:
                s, b = call("POST", "/v1/compress", {"documents": [d]})
                if s != 200:
                    note("server_error" if s >= 500 else "unexpected_status", f"compress {s}")
                    continue
                lf = json.loads(b)["latent_file"]
                s, b = call("POST", "/v1/decompress", {"latent_file": lf, "max_new_tokens": K})
                if s != 200:
                    note("server_error" if s >= 500 else "unexpected_status", f"decompress {s}")
                elif json.loads(b)["texts"] != [serial[d][1]]:
                    note("wrong_answer", "decompress differs from the serial round trip")
                else:
                    note("compress_decompress")
            elif kind == 2:
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
                body = json.dumps({"text": d, "stream": True}).encode()
                c.request("POST", "/v1/roundtrip", body=body, headers={"content-type": "application/json"})
                r = c.getresponse()
                if r.status != 200:
                    note("server_error" if r.status >= 500 else "unexpected_status", f"stream {r.status}")
                else:
                    r.fp.readline()  # the first event line: the stream is under way
                    note("cancelled_stream")
                c.close()  # hang up mid-stream: the server must free the rows
            else:
                raw = HOSTILE[(i // 4) % len(HOSTILE)]
                s, _ = call("POST", PATHS.get(raw, "/v1/roundtrip"), raw=raw)
                if s >= 500:
                    note("server_error", f"hostile body {raw[:30]!r}: {s}")
                elif not 400 <= s < 500:
                    note("unexpected_status", f"hostile body {raw[:30]!r}: {s}")
                else:
                    note("hostile")
        except Exception as e:  # noqa: BLE001 - a transport failure is a finding
            note("transport_error", f"{type(e).__name__}: {e}")


threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.threads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
stats["documents"] = len(docs)
stats["seconds"] = a.seconds
json.dump(stats, open(a.out, "w"), indent=1)
bad = stats["wrong_answer"] + stats["server_error"] + stats["transport_error"] + stats["unexpected_status"]
print(f"mix: {stats['roundtrip']} round trips, {stats['compress_decompress']} compress+decompress, "
      f"{stats['cancelled_stream']} cancelled streams, {stats['hostile']} hostile bodies; "
      f"{stats['wrong_answer']} wrong, {stats['server_error']} 5xx, {stats['transport_error']} transport errors, "
      f"{stats['unexpected_status']} unexpected statuses", file=sys.stderr)
sys.exit(1 if bad else 0)
