"""Throughput and latency of `c3_roundtrip` through Triton at given concurrency levels
(closed loop: C client threads, each sending its next request when the previous one
is answered), over the paragraphs of a text file as documents, cycled. Run by
`scripts/triton.sh bench` (which starts and stops the server); prints one table row
per level and, with --json, one JSON object.

    python tests/triton/bench.py --url 127.0.0.1:8000 --documents models/demo-page.txt \
        --concurrency 1,16 --requests 64
"""

import argparse
import json
import threading
import time

import numpy as np
import tritonclient.http as httpclient


def paragraphs(path):
    docs, lines = [], []
    for line in open(path, encoding="utf-8").read().splitlines() + [""]:
        if line.strip():
            lines.append(line)
        elif lines:
            docs.append("\n".join(lines).strip())
            lines = []
    return docs


def percentile(values, q):
    """Nearest-rank percentile (as c3-loadgen reports them)."""
    s = sorted(values)
    k = max(1, int(np.ceil(q / 100 * len(s))))
    return s[k - 1]


def one_level(url, docs, concurrency, requests, warmup):
    lock = threading.Lock()
    next_index = [0]
    latencies, tokens, errors = [], [], []

    def take():
        with lock:
            i = next_index[0]
            next_index[0] += 1
            return i

    def worker(barrier):
        client = httpclient.InferenceServerClient(url, network_timeout=600.0)
        outputs = [httpclient.InferRequestedOutput("SUMMARY")]

        def send(doc):
            t = httpclient.InferInput("TEXT", [1], "BYTES")
            t.set_data_from_numpy(np.array([doc.encode()], dtype=np.object_))
            return client.infer("c3_roundtrip", [t], outputs=outputs)

        for w in range(warmup):  # not counted
            send(docs[w % len(docs)])
        barrier.wait()
        while (i := take()) < requests:
            t0 = time.perf_counter()
            try:
                r = send(docs[i % len(docs)])
                summary = json.loads(r.as_numpy("SUMMARY")[0])
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    tokens.append(len(summary["output_ids"]))
            except Exception as e:  # noqa: BLE001 - counted, reported
                with lock:
                    errors.append(str(e).splitlines()[0])
        client.close()

    barrier = threading.Barrier(concurrency + 1)
    threads = [threading.Thread(target=worker, args=(barrier,)) for _ in range(concurrency)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": wall,
        "requests_per_s": len(latencies) / wall,
        "tokens_per_s": sum(tokens) / wall,
        "latency_p50_ms": 1e3 * percentile(latencies, 50) if latencies else None,
        "latency_p95_ms": 1e3 * percentile(latencies, 95) if latencies else None,
        "latency_p99_ms": 1e3 * percentile(latencies, 99) if latencies else None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="127.0.0.1:8000")
    ap.add_argument("--documents", required=True)
    ap.add_argument("--concurrency", default="1,16")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=1, help="requests per client thread before a level, not counted")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    docs = paragraphs(a.documents)
    rows = [one_level(a.url, docs, int(c), a.requests, a.warmup) for c in a.concurrency.split(",")]
    base = rows[0]
    if a.json:
        print(json.dumps({"documents": a.documents, "n_documents": len(docs), "levels": rows}))
        return
    print(f"Triton c3_roundtrip, {len(docs)} documents from {a.documents}, {a.requests} requests per level")
    print("| concurrency | requests | errors | req/s | generated tok/s | x conc. 1 | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['concurrency']} | {r['requests']} | {r['errors']} | {r['requests_per_s']:.2f} | "
            f"{r['tokens_per_s']:.0f} | {r['tokens_per_s'] / base['tokens_per_s']:.2f} | "
            f"{r['latency_p50_ms']:.0f} | {r['latency_p95_ms']:.0f} | {r['latency_p99_ms']:.0f} |"
        )
        if r["first_error"]:
            print(f"  first error: {r['first_error']}")


if __name__ == "__main__":
    main()
