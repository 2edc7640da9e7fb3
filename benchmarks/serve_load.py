"""Memory of the web server under concurrent uploads of huge and normal pictures (loopback only).

    python benchmarks/serve_load.py                         # 8 threads x 2 rounds, prints a table
    python benchmarks/serve_load.py --threads 8 --rounds 3 --out serve_load.md

Starts `python -m fer_app.serve` on a free port of 127.0.0.1 (nothing else is contacted),
then ``--threads`` threads each send ``--rounds`` x (one SIDE x SIDE PNG, one 640x480 JPEG
photo) to POST /api/detect at the same time. The PNG is a smooth gradient: about 0.1 MB on
the wire but SIDE x SIDE pixels (36 megapixels at 6000) once decoded. The server process's
resident memory is read from /proc/PID/status: VmRSS before the first upload, VmHWM (the
kernel's peak) at the end, and VmRSS again a few seconds after the last answer. Responses
are counted by kind and HTTP status. Bounded: requests stop being sent after ``--seconds``
and each waits at most that long; the server is stopped at the end. Prints a markdown
table; writes it to a file only with ``--out``.
"""
from __future__ import annotations

import argparse
import collections
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import numpy
from PIL import Image

from fer_app.recognition.scenes import background

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"


def huge_png(side: int) -> bytes:
    """A side x side RGB gradient as PNG bytes: small file, huge picture."""
    ramp = numpy.linspace(0, 255, side).astype(numpy.uint8)  # (side,)
    rgb = numpy.empty((side, side, 3), dtype=numpy.uint8)
    rgb[:, :, 0] = ramp[None, :]
    rgb[:, :, 1] = ramp[:, None]
    rgb[:, :, 2] = 128
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def photo_jpeg() -> bytes:
    """A 640x480 photo-like grey background as JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(background((480, 640))).convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    """One form field "file" -> (body, content type)."""
    boundary = "serveload" + os.urandom(8).hex()
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload(url: str, data: bytes, filename: str, timeout: float) -> str:
    """POST one picture; the HTTP status as text, or the error's class name."""
    body, content_type = multipart(data, filename)
    request = urllib.request.Request(f"{url}/api/detect", data=body, method="POST",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return str(response.status)
    except urllib.error.HTTPError as error:
        return str(error.code)
    except OSError as error:
        return type(error).__name__


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process in kB."""
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status if line.startswith("Vm"))
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_server(model: str, log, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "fer_app.serve", "--host", HOST, "--port", str(port),
         "--model", model, *extra], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": REPO})
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("serve_load: the server did not start; its log:\n" + open(log.name).read())


def run_load(url: str, pictures: dict[str, bytes], threads: int, rounds: int,
             seconds: float) -> tuple[dict[str, collections.Counter], float]:
    """Each thread sends every picture ``rounds`` times; -> counts of statuses per kind, seconds."""
    counts = {kind: collections.Counter() for kind in pictures}
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + seconds

    def client() -> None:
        for _ in range(rounds):
            for kind, data in pictures.items():
                left = deadline - time.monotonic()
                status = upload(url, data, f"{kind}.bin", left) if left > 0 else "not sent"
                with lock:
                    counts[kind][status] += 1

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return counts, time.monotonic() - start


def report(args, sizes: dict[str, int], counts, elapsed: float, before: dict, peak: dict,
           after: dict) -> str:
    statuses = sorted({status for counter in counts.values() for status in counter})
    lines = [f"serve_load: {args.threads} threads x {args.rounds} rounds, model {args.model}, "
             f"{elapsed:.1f} s", "",
             "| picture | bytes | " + " | ".join(statuses) + " |",
             "|---|---|" + "---|" * len(statuses)]
    for kind, counter in counts.items():
        lines.append(f"| {kind} | {sizes[kind]} | "
                     + " | ".join(str(counter[status]) for status in statuses) + " |")
    mb = 1024
    lines += ["", "| server RSS before (MB) | peak VmHWM (MB) | after (MB) |", "|---|---|---|",
              f"| {before['VmRSS'] / mb:.0f} | {peak['VmHWM'] / mb:.0f} "
              f"| {after['VmRSS'] / mb:.0f} |"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="times each client sends each picture (default 2)")
    parser.add_argument("--side", type=int, default=6000, help="the huge PNG's side (default 6000)")
    parser.add_argument("--seconds", type=float, default=300,
                        help="stop sending after this many seconds (default 300)")
    parser.add_argument("--model", default="default",
                        help="the server's --model (default: the shipped model)")
    parser.add_argument("--server-args", default="",
                        help="extra options for fer_app.serve, e.g. '--max-busy 8'")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)

    pictures = {f"png {args.side}x{args.side}": huge_png(args.side), "jpeg 640x480": photo_jpeg()}
    sizes = {kind: len(data) for kind, data in pictures.items()}
    with tempfile.NamedTemporaryFile("w", suffix=".log") as log:
        process, url = start_server(args.model, log, args.server_args.split())
        try:
            before = memory_kb(process.pid)
            counts, elapsed = run_load(url, pictures, args.threads, args.rounds, args.seconds)
            peak = memory_kb(process.pid)
            time.sleep(3)
            after = memory_kb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
    table = report(args, sizes, counts, elapsed, before, peak, after)
    print(table)
    if args.out:
        with open(args.out, "w") as out:
            out.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
