"""The web server's limits (fer_app/serve.py) against bad and hostile requests and options.

Streamed oversized bodies, pixel bombs, foreign Host headers, a full server, /docs
offline, bad command-line options and model files. The recognizer is a stand-in that
records what it is given (the real one is tested in test_app_serve.py).
"""
from __future__ import annotations

import asyncio
import gc
import importlib.util
import io
import os
import struct
import subprocess
import sys
import threading
import weakref
import zlib

import numpy
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFile

from fer_app.data.load import EMOTIONS
from fer_app.recognition.inference import DEFAULT_MODEL
from fer_app.serve import MULTIPART_OVERHEAD, create_app, main, served_hosts
from tests.app_support import random_model_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCAL = "http://127.0.0.1:8000"
MB = 1024 * 1024


class StandInRecognizer:
    """Answers no faces; can hold each call until released, and keeps a weak
    reference to every picture it was given."""
    model_name = "stand-in"
    class_names = EMOTIONS

    def __init__(self, hold: bool = False):
        self.entered, self.release = threading.Event(), threading.Event()
        self.pictures: list[weakref.ref] = []
        if not hold:
            self.release.set()

    def detect(self, image, color: str = "rgb") -> list[dict]:
        self.pictures.append(weakref.ref(image))
        self.entered.set()
        assert self.release.wait(timeout=30)
        return []


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height grey pixels and holds none (a pixel bomb's header)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def client_for(recognizer=None, **limits) -> TestClient:
    return TestClient(create_app(recognizer or StandInRecognizer(), **limits), base_url=LOCAL)


def post_streamed(app, chunks, host: bytes = b"127.0.0.1:8000") -> tuple[int, bytes, int]:
    """POST /api/detect to the ASGI app with a chunked body (no Content-Length) fed
    from ``chunks``, as a server would: -> (status, response body, body bytes the
    application took)."""
    boundary = b"streamedboundary"
    head = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; '
            b'filename="big.png"\r\nContent-Type: image/png\r\n\r\n')
    parts = iter([head, *chunks])
    taken, messages = 0, []

    async def receive() -> dict:
        nonlocal taken
        part = next(parts, None)
        if part is None:
            return {"type": "http.request", "body": b"\r\n--" + boundary + b"--\r\n",
                    "more_body": False}
        taken += len(part)
        return {"type": "http.request", "body": part, "more_body": True}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/api/detect",
             "raw_path": b"/api/detect", "query_string": b"", "root_path": "",
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
             "headers": [(b"host", host), (b"transfer-encoding", b"chunked"),
                         (b"content-type", b"multipart/form-data; boundary=" + boundary)]}
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, body, taken


def test_a_chunked_upload_is_cut_off_at_the_limit_not_read_in_full():
    app = create_app(StandInRecognizer(), max_upload_mb=1)
    chunk = b"\x00" * (64 * 1024)
    offered = 200  # chunks: 12.5 MB, far over the 1 MB limit
    status, body, taken = post_streamed(app, (chunk for _ in range(offered)))
    assert status == 413 and b"larger than the limit of 1 MB" in body
    assert taken <= 1 * MB + MULTIPART_OVERHEAD + len(chunk)
    assert taken < offered * len(chunk) / 10


def test_a_chunked_upload_under_the_limit_is_analyzed():
    recognizer = StandInRecognizer()
    status, body, _ = post_streamed(create_app(recognizer, max_upload_mb=1), [png_bytes(32, 24)])
    assert status == 200 and b'"width":32' in body and len(recognizer.pictures) == 1


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    response = client_for(max_upload_mb=0.25).post(
        "/api/detect", content=b"\x00" * MB,
        headers={"content-type": "multipart/form-data; boundary=x"})
    assert response.status_code == 413 and "0.25 MB" in response.json()["detail"]


@pytest.mark.parametrize("width, height", [(7000, 7000), (200_000, 200_000)],
                         ids=["over-the-cap", "over-PIL's-bomb-limit"])
def test_a_pixel_bomb_is_refused_from_its_header_without_decoding(monkeypatch, width, height):
    def no_decoding(self):
        raise AssertionError("the picture was decoded")
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    recognizer = StandInRecognizer()
    response = client_for(recognizer).post(
        "/api/detect", files={"file": ("bomb.png", png_header_only(width, height))})
    assert response.status_code == 413 and "image too large" in response.json()["detail"]
    assert recognizer.pictures == []


def test_the_pixel_cap_is_a_setting():
    client = client_for(max_pixels=1000)
    small = client.post("/api/detect", files={"file": ("a.png", png_bytes(40, 20))})
    assert small.status_code == 200
    response = client.post("/api/detect", files={"file": ("b.png", png_bytes(40, 30))})
    assert response.status_code == 413 and "40x30 pixels" in response.json()["detail"]


def test_the_decoded_picture_is_not_kept_after_the_answer():
    recognizer = StandInRecognizer()
    client = client_for(recognizer)
    assert client.post("/api/detect", files={"file": ("a.png", png_bytes())}).status_code == 200
    gc.collect()
    assert len(recognizer.pictures) == 1 and recognizer.pictures[0]() is None


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:5000", "LOCALHOST", "[::1]:8000",
                                  "[::1]"])
def test_loopback_host_names_are_served(host):
    response = client_for().get("/api/health", headers={"host": host})
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example",
                                  "localhost.evil.example", "", "a b"])
def test_other_host_names_are_refused(host):
    client = client_for()
    for path in ("/", "/api/health", "/docs"):
        assert client.get(path, headers={"host": host}).status_code == 400
    upload = client.post("/api/detect", files={"file": ("a.png", png_bytes())},
                         headers={"host": host})
    assert upload.status_code == 400


def test_allowed_hosts_adds_names_and_domains():
    client = client_for(allowed_hosts=["myhost.lan", "*.example.org"])
    for host in ("myhost.lan:8000", "a.example.org", "127.0.0.1"):
        assert client.get("/api/health", headers={"host": host}).status_code == 200
    for host in ("otherhost.lan", "example.org.evil.example"):
        assert client.get("/api/health", headers={"host": host}).status_code == 400


@pytest.mark.parametrize("host, extra, served", [
    ("127.0.0.1", [], []),            # loopback names are served anyway: not listed twice
    ("0.0.0.0", [], []),
    ("::", ["mypc.lan"], ["mypc.lan"]),
    ("::1", [], []),
    ("192.168.1.20", ["mypc.lan"], ["192.168.1.20", "mypc.lan"]),
])
def test_the_bound_address_is_served_unless_wildcard_or_loopback(host, extra, served):
    assert served_hosts(host, extra) == served


def test_docs_page_loads_nothing_from_elsewhere():
    client = client_for()
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/api/detect" in page.text and "/api/health" in page.text
    assert "http://" not in page.text and "https://" not in page.text and "<script" not in page.text
    assert client.get("/redoc").status_code == 404


def test_a_full_server_answers_503_at_once_and_serves_again_when_free():
    recognizer = StandInRecognizer(hold=True)
    client = client_for(recognizer, max_busy=1)
    answers = {}
    first = threading.Thread(target=lambda: answers.update(first=client.post(
        "/api/detect", files={"file": ("a.png", png_bytes())})))
    first.start()
    try:
        assert recognizer.entered.wait(timeout=30)
        busy = client.post("/api/detect", files={"file": ("b.png", png_bytes())})
        assert busy.status_code == 503 and "busy" in busy.json()["detail"]
        assert client.get("/api/health").status_code == 200  # only uploads are counted
    finally:
        recognizer.release.set()
        first.join(timeout=30)
    assert answers["first"].status_code == 200
    again = client.post("/api/detect", files={"file": ("c.png", png_bytes())})
    assert again.status_code == 200 and len(recognizer.pictures) == 2


def run_serve(*options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fer_app.serve", "--port", "0", *options],
                          capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": REPO})


@pytest.mark.parametrize("options, words", [
    (["--max-upload-mb", "-1"], "argument --max-upload-mb: must be a positive number"),
    (["--max-upload-mb", "0"], "argument --max-upload-mb: must be a positive number"),
    (["--max-upload-mb", "nan"], "argument --max-upload-mb: must be a positive number"),
    (["--max-upload-mb", "inf"], "argument --max-upload-mb: must be a positive number"),
    (["--max-upload-mb", "ten"], "argument --max-upload-mb: not a number"),
    (["--max-megapixels", "-5"], "argument --max-megapixels: must be a positive number"),
    (["--max-busy", "0"], "argument --max-busy: must be a whole number >= 1"),
    (["--max-busy", "2.5"], "argument --max-busy: must be a whole number >= 1"),
    (["--port", "70000"], "argument --port: must be a port number 0-65535"),
    (["--port", "-1"], "argument --port: must be a port number 0-65535"),
    (["--allowed-hosts", "a.lan,,b.lan"], "argument --allowed-hosts: '' is not a host name"),
    (["--allowed-hosts", "ev*l.example"], "argument --allowed-hosts: 'ev*l.example' is not"),
])
def test_bad_options_are_one_usage_error(capsys, options, words):
    with pytest.raises(SystemExit) as exit_info:
        main(options)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith(f"python -m fer_app.serve: error: {words}")


def test_a_bad_option_in_a_real_process_gives_no_traceback():
    finished = run_serve("--max-upload-mb", "-1")
    assert finished.returncode == 2 and "Traceback" not in finished.stderr
    assert finished.stderr.splitlines()[-1] == (
        "python -m fer_app.serve: error: argument --max-upload-mb: must be a positive number, "
        "got '-1'")


def bad_model_files(folder) -> dict[str, str]:
    """name -> path of a file that is not a usable model."""
    numpy.savez(folder / "plain.npz", weights=numpy.zeros(3))
    (folder / "text.npz").write_text("not a model\n")
    shipped = open(DEFAULT_MODEL, "rb").read() if os.path.isfile(DEFAULT_MODEL) else b""
    (folder / "truncated.npz").write_bytes(shipped[: len(shipped) // 2])
    (folder / "empty.npz").write_bytes(b"")
    paths = {name: str(folder / f"{name}.npz") for name in ("plain", "text", "truncated", "empty")}
    return paths | {"missing": str(folder / "missing.npz"), "folder": str(folder)}


@pytest.mark.parametrize("name", ["missing", "folder", "plain", "text", "truncated", "empty"])
def test_a_bad_model_file_is_one_line_and_exit_1(tmp_path, capsys, name):
    path = bad_model_files(tmp_path)[name]
    assert main(["--model", path]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"python -m fer_app.serve: error: {path}")


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None,
                    reason="CuPy is installed here: --backend cupy may really start a server")
def test_cupy_without_a_gpu_is_one_line_and_exit_1():
    finished = run_serve("--backend", "cupy")
    assert finished.returncode == 1 and "Traceback" not in finished.stderr
    assert finished.stderr.count("\n") == 1
    assert finished.stderr.startswith("python -m fer_app.serve: error: backend 'cupy' needs")


def test_the_load_benchmark_runs_a_real_server_on_loopback(tmp_path):
    """benchmarks/serve_load.py, tiny: a real uvicorn server answers every upload."""
    out = tmp_path / "load.md"
    finished = subprocess.run(
        [sys.executable, "benchmarks/serve_load.py", "--side", "800", "--threads", "2",
         "--rounds", "1", "--model", random_model_file(tmp_path), "--out", str(out)],
        capture_output=True, text=True, timeout=180, cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO})
    assert finished.returncode == 0, finished.stderr
    table = out.read_text()
    assert table in finished.stdout + "\n"
    lines = table.splitlines()
    statuses = [cell.strip() for cell in lines[2].split("|")[3:-1]]  # | picture | bytes | ...
    assert set(statuses) <= {"200", "503"}
    for line, kind in zip(lines[4:6], ["png 800x800", "jpeg 640x480"]):
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        assert cells[0] == kind and sum(int(count) for count in cells[2:]) == 2
