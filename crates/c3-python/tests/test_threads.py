"""Python threads share one Runtime: calls release the GIL, their requests share
the scheduler's batches, and every output equals the serial one."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import c3


def test_threads_equal_serial(rt, docs, long_text):
    texts = docs + [long_text]
    serial = [rt.roundtrip(t) for t in texts]
    serial_files = [rt.decompress(rt.compress([t])) for t in texts]
    start = threading.Barrier(len(texts) * 3)

    def roundtrip(t):
        start.wait()
        return rt.roundtrip(t)

    def stream(t):
        start.wait()
        return "".join(rt.stream(t))

    def via_file(t):
        start.wait()
        return rt.decompress(rt.compress([t]))

    with ThreadPoolExecutor(len(texts) * 3) as pool:
        rounds = [pool.submit(roundtrip, t) for t in texts]
        streams = [pool.submit(stream, t) for t in texts]
        files = [pool.submit(via_file, t) for t in texts]
        for want, r, s, f, wf in zip(serial, rounds, streams, files, serial_files):
            got = r.result()
            assert got["output_ids"] == want["output_ids"]
            assert got["windows"] == want["windows"]
            assert got["text"] == want["text"] == s.result()
            assert f.result() == wf
    stats = rt.stats()
    assert stats["queued"] == 0 and stats["running"] == 0, stats


def test_calls_release_the_gil(rt, long_text):
    """While one thread waits on the runtime, Python code runs in another."""
    ticks = 0
    failed = []

    def work():
        try:
            for _ in range(3):
                rt.roundtrip(long_text)
        except Exception as e:  # reported below; the loop must end either way
            failed.append(e)

    t0 = time.perf_counter()
    worker = threading.Thread(target=work)
    worker.start()
    while worker.is_alive():
        ticks += 1
    worker.join()
    assert not failed, failed
    elapsed = time.perf_counter() - t0
    # Held GIL: the loop would run only at the interpreter's switch points around
    # the calls (a handful of ticks). Released: it spins the whole time.
    assert ticks > 10_000, (ticks, elapsed)


def test_a_full_queue_raises_queue_full(export_dir, long_text):
    """max_queue=1, one row: while the first request's windows wait for the row,
    the others are refused at once; the accepted ones still finish correctly."""
    rt = c3.Runtime(export_dir, max_batch=1, max_queue=1)
    want = rt.roundtrip(long_text)["text"]
    start = threading.Barrier(6)

    def one():
        start.wait()
        try:
            return rt.roundtrip(long_text)["text"]
        except c3.QueueFullError as e:
            return e

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: one(), range(6)))
    refused = [r for r in results if isinstance(r, Exception)]
    assert refused, "no request was refused"
    assert all(str(e) == "the queue is full (1 requests waiting); retry later" for e in refused)
    assert isinstance(refused[0], RuntimeError) and isinstance(refused[0], c3.C3Error)
    assert all(r == want for r in results if not isinstance(r, Exception))
    rt.close()


def test_ctrl_c_interrupts_a_call_and_cancels_it(export_dir, long_text):
    """A long call in the main thread still sees Ctrl-C (KeyboardInterrupt within a
    poll interval), its request is cancelled, and the runtime serves on."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import os, signal, threading, time, c3
        # Python keeps SIGINT ignored if it started so (a shell's background jobs
        # do): the test is about a Ctrl-C that reaches Python, so it asks for one.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        rt = c3.Runtime({str(export_dir)!r}, max_batch=1)
        # Long enough to be running when the signal comes 0.3 s in, whatever the
        # machine: an interrupted call ends then, however much was left.
        text = {long_text!r} * 40
        for call in (lambda: rt.roundtrip(text), lambda: list(rt.stream(text))):
            threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
            t0 = time.perf_counter()
            try:
                call()
                print("finished")
            except KeyboardInterrupt:
                print("interrupted after %.2f s" % (time.perf_counter() - t0))
            for _ in range(50):
                if rt.stats()["queued"] == 0 and rt.stats()["running"] == 0:
                    break
                time.sleep(0.05)
            print(rt.stats()["running"], rt.roundtrip("A short text.")["text"])
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 4, out.stdout
    for interrupted, after in (lines[0:2], lines[2:4]):
        assert interrupted.startswith("interrupted after "), out.stdout
        assert float(interrupted.split()[2]) < 2.0, out.stdout
        assert after.startswith("0 "), out.stdout
