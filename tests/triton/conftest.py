"""Fixtures for the Triton tests. scripts/triton.sh test installs the server and the
client, and sets C3_BIN, C3_EXPORT_BIN, C3_WHEEL and ORT_DYLIB_PATH; run any other
way, a test fails saying which is missing (nothing is skipped).

The server is started the way users start it, `scripts/triton.sh EXPORT --port P`,
on a free loopback port, with the shipped default model (models/c3-tiny) exported
by c3-export; it is stopped (SIGTERM, then SIGKILL) whatever the tests did."""

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRITON_SH = ROOT / "scripts" / "triton.sh"
DEMO_PAGE = ROOT / "models" / "demo-page.txt"
MODELS = ["c3_roundtrip", "c3_compress", "c3_decompress"]
READY_TIMEOUT_S = 180


def need(var):
    value = os.environ.get(var)
    if not value or not Path(value).exists():
        pytest.fail(
            f"{var}={value!r} does not name an existing file: run these tests with "
            "`scripts/triton.sh test` (it installs Triton and sets it)"
        )
    return value


@pytest.fixture(scope="session")
def c3_bin():
    return need("C3_BIN")


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    exporter = need("C3_EXPORT_BIN")
    out = tmp_path_factory.mktemp("export") / "c3-tiny"
    done = subprocess.run(
        [exporter, str(ROOT / "models" / "c3-tiny"), "--out", str(out)],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return out


def _ports_free(base):
    socks = []
    try:
        for p in range(base, base + 3):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p))
            socks.append(s)
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_base_port():
    """A port P with P, P+1, P+2 free on loopback (HTTP, gRPC, metrics)."""
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        base = s.getsockname()[1]
        s.close()
        if base < 65000 and _ports_free(base):
            return base
    pytest.fail("no three consecutive free loopback ports")


@dataclass
class Server:
    port: int
    proc: subprocess.Popen
    log: Path
    repo: Path

    @property
    def url(self):
        return f"127.0.0.1:{self.port}"

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://{self.url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def log_tail(self, lines=40):
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def stop(proc):
    """SIGTERM to the server's process group (tritonserver and its stubs), then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=40)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


@contextlib.contextmanager
def running_server(work, export_dir, *flags):
    """`scripts/triton.sh EXPORT --port P --repo WORK/repo FLAGS` until ready; stopped
    on exit whatever happened."""
    need("C3_BIN")
    need("C3_WHEEL")
    need("ORT_DYLIB_PATH")
    port = free_base_port()
    log = work / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(TRITON_SH), str(export_dir), "--port", str(port), "--repo", str(work / "repo"), *flags],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    srv = Server(port=port, proc=proc, log=log, repo=work / "repo")
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not srv.ready():
            if proc.poll() is not None:
                pytest.fail(f"tritonserver exited ({proc.returncode}) before it was ready:\n{srv.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"tritonserver not ready after {READY_TIMEOUT_S} s:\n{srv.log_tail()}")
            time.sleep(0.5)
        yield srv
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def server(tmp_path_factory, export_dir):
    # Rows fewer than the 16 concurrent requests' windows: rows wait for slots and
    # join the running batch at different steps.
    with running_server(tmp_path_factory.mktemp("triton"), export_dir, "--max-batch", "8") as srv:
        yield srv


@pytest.fixture(scope="session")
def client(server):
    import tritonclient.http as httpclient

    # One client, used from the test's thread only (its gevent pool is not
    # thread-safe); concurrency comes from async_infer.
    c = httpclient.InferenceServerClient(server.url, concurrency=16, network_timeout=300.0)
    yield c
    c.close()


@pytest.fixture(scope="session")
def docs():
    """16 documents of different lengths (one to several 40-token windows)."""
    paras = [p.strip() for p in DEMO_PAGE.read_text().split("\n\n") if p.strip()]
    sentences = [s.strip() + "." for p in paras for s in p.split(". ") if len(s.strip()) > 20]
    out = []
    for i in range(16):
        if i % 4 == 3:
            out.append(paras[i % len(paras)])
        else:
            out.append(" ".join(sentences[i * 2 : i * 2 + 1 + i % 3]))
    assert len(set(out)) == 16
    return out
