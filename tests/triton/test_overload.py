"""Overload: a server whose instances hold few requests (--max-batch 1 --max-queue 1,
two instances) answers the excess at once with UNAVAILABLE (HTTP 503) and the
runtime's or the model's one line, serves the rest correctly, and stays ready."""

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from conftest import DEMO_PAGE, running_server


@pytest.fixture(scope="module")
def small_server(tmp_path_factory, export_dir):
    with running_server(tmp_path_factory.mktemp("triton-small"), export_dir,
                        "--max-batch", "1", "--max-queue", "1", "--instances", "2") as srv:
        yield srv


def test_excess_requests_get_unavailable_and_the_rest_succeed(small_server):
    client = httpclient.InferenceServerClient(small_server.url, concurrency=12, network_timeout=300.0)
    text = DEMO_PAGE.read_text()[:3000]  # several windows: each request holds its rows a while
    data = np.array([text.encode()], dtype=np.object_)
    pending = []
    for _ in range(12):
        i = httpclient.InferInput("TEXT", [1], "BYTES")
        i.set_data_from_numpy(data)
        pending.append(client.async_infer("c3_roundtrip", [i]))
    ok, refused = [], []
    for p in pending:
        try:
            ok.append(p.get_result().as_numpy("TEXT")[0].decode())
        except InferenceServerException as e:
            refused.append((e.status(), e.message()))
    assert ok and refused, (len(ok), refused)
    assert len(set(ok)) == 1
    for status, msg in refused:
        assert status == "503", (status, msg)
        assert "queue is full" in msg or msg.startswith("busy: "), msg
    assert client.is_server_ready() and client.is_model_ready("c3_roundtrip")
    assert small_server.proc.poll() is None
    client.close()
