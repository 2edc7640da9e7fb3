"""A web page and a JSON API for emotion recognition (FastAPI + one small HTML/JS page).

    python -m fer_app.serve                       # http://127.0.0.1:8000
    python -m fer_app.serve --host 0.0.0.0 --port 8080 --allowed-hosts myhost.lan,192.168.1.20

    GET  /             the page: upload a photo, or turn on the webcam for live boxes and bars
    POST /api/detect   multipart form field "file" (an image) ->
                       {"faces": [{"box", "emotion", "score", "probabilities"}, ...],
                        "width": W, "height": H, "seconds": t}
    GET  /api/health   {"status": "ok", "model": ..., "classes": [...]}
    GET  /docs         the API described on one plain page (from /openapi.json)

Limits, so that no request can make the server hold much memory or many threads:
  --max-upload-mb (10)   the request body is counted as it arrives and reading stops with
                         413 once it passes the limit (plus 64 kB of form headers), whether or
                         not the client sent Content-Length: a chunked upload is cut off there,
                         never stored in full. A declared Content-Length over it is refused at once.
  --max-megapixels (40)  width x height read from the picture's header before it is decoded;
                         413 above it (PIL's own DecompressionBombError is a 413 too).
  --max-busy (4)         uploads in the server at once (being received, waiting, analyzed); one
                         more is answered 503 at once, before its body is read. Decoding and
                         detection run one upload at a time, so at most one picture is decoded in
                         memory; nothing of it is kept after the answer.
  Host allow-list        only requests whose Host header names this server are served (against
                         DNS rebinding): 127.0.0.1, localhost and [::1] on any port, the --host
                         address, and the names given with --allowed-hosts a,b ("*" allows any,
                         "*.example.com" a domain); others get 400 "Invalid host header".
Bad uploads get a 4xx JSON error {"detail": "..."}: 400 empty or not an image, 413 over a
limit, 422 no "file" field; a full server 503.

The page, its script and /docs use no external resource (no CDN), so all work offline.
FastAPI's own /docs (Swagger UI) and /redoc load their scripts from a CDN and no package in
the dependencies ships those files, so they are switched off and /docs is a plain HTML page
written here from the OpenAPI schema, without any script.
"""
from __future__ import annotations

import os

# One BLAS thread, set before NumPy loads OpenBLAS: a frame's 1-4 faces make small
# matrix products, and OpenBLAS's threads cost more than they give (a video ran at 8.6
# instead of 2.3 frames/s on the shared 2-core machine). Set the variable to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import html
import io
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy
from fastapi import FastAPI, File, HTTPException, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from tinycnn.backend import BackendError

from .predict import add_recognizer_arguments, build_recognizer, warm_up
from .recognition.faces import to_grey
from .recognition.inference import ModelFileError
from .recognition.recognizer import EmotionRecognizer, pil_to_array

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MULTIPART_OVERHEAD = 64 * 1024  # bytes of form headers allowed on top of the file itself
MAX_PIXELS = 40_000_000         # largest picture decoded (width x height), --max-megapixels
MAX_BUSY = 4                    # uploads in the server at once, --max-busy
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ANY_ADDRESS = {"0.0.0.0", "::", ""}


class Face(BaseModel):
    box: list[int]                    # [x, y, w, h] in pixels of the uploaded image
    emotion: str                      # the most probable emotion
    score: float                      # its probability
    probabilities: dict[str, float]   # every emotion's probability (they sum to 1)


class Detection(BaseModel):
    faces: list[Face]
    width: int
    height: int
    seconds: float                    # time spent finding and classifying the faces


class Health(BaseModel):
    status: str
    model: str
    classes: list[str]


def decode_grey(data: bytes, max_pixels: int = MAX_PIXELS) -> numpy.ndarray:
    """Uploaded bytes -> (H, W) grey uint8 (from RGB, as EmotionRecognizer.detect does).

    HTTP 400 when they are not a picture; 413 when the header says it has more than
    ``max_pixels`` pixels: Image.open reads only the header, so a small file holding a
    huge picture is refused before its pixels are decoded. The RGB copy is dropped as soon
    as the grey one is made.
    """
    if not data:
        raise HTTPException(status_code=400, detail="empty upload: the file has no bytes")
    try:
        with Image.open(io.BytesIO(data)) as picture:
            width, height = picture.size
            if width * height > max_pixels:
                raise HTTPException(status_code=413, detail=(
                    f"image too large: {width}x{height} pixels (limit {max_pixels / 1e6:g} "
                    f"megapixels)"))
            picture.load()
            return to_grey(pil_to_array(picture))
    except Image.DecompressionBombError as error:
        raise HTTPException(status_code=413, detail=f"image too large: {error}") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise HTTPException(status_code=400,
                            detail=f"not an image PIL can read ({type(error).__name__})") from None


class BodyLimit:
    """ASGI middleware: no request body larger than ``max_bytes`` is read.

    A declared Content-Length over the limit is answered 413 at once. Otherwise the
    body's chunks are counted as the application receives them, and the chunk that
    passes the limit raises HTTPException(413) instead of being handed on: reading
    stops there, whatever the headers said (chunked uploads have no Content-Length).
    FastAPI lets an HTTPException raised while it reads a form through to its JSON
    error handler.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, detail: str):
        self.app, self.max_bytes, self.detail = app, max_bytes, detail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            refusal = JSONResponse(status_code=413, content={"detail": self.detail})
            await refusal(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(status_code=413, detail=self.detail)
            return message

        await self.app(scope, counted_receive, send)


class BusyLimit:
    """ASGI middleware: at most ``max_busy`` requests to ``path`` in the server at once.

    One more is answered 503 straight away, before its body is read. The count is a
    plain int: ASGI calls run on one event-loop thread.
    """

    def __init__(self, app: ASGIApp, max_busy: int, path: str):
        self.app, self.max_busy, self.path = app, max_busy, path
        self.busy = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        if self.busy >= self.max_busy:
            detail = f"server busy: {self.max_busy} uploads are being analyzed, try again shortly"
            response = JSONResponse(status_code=503, content={"detail": detail},
                                    headers={"Retry-After": "1"})
            await response(scope, receive, send)
            return
        self.busy += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.busy -= 1


def docs_page(schema: dict) -> str:
    """The OpenAPI schema as one HTML page: each operation's description, then its
    request and responses as JSON. No script, no external resource."""
    sections = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            shown = {key: operation[key] for key in ("requestBody", "responses")
                     if key in operation}
            words = operation.get("description") or operation.get("summary", "")
            sections.append(
                f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>\n"
                f"<p>{html.escape(words)}</p>\n"
                f"<pre>{html.escape(json.dumps(shown, indent=2))}</pre>")
    components = html.escape(json.dumps(schema.get("components", {}), indent=2))
    title = html.escape(schema["info"]["title"])
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}: API</title><link rel=\"stylesheet\" href=\"/static/style.css\">"
            f"</head>\n<body><main><h1>{title}: API</h1>\n"
            f"<p>{html.escape(schema['info'].get('description', ''))} The same as JSON: "
            f"<a href=\"/openapi.json\">/openapi.json</a>.</p>\n" + "\n".join(sections)
            + f"\n<h2>Schemas</h2>\n<pre>{components}</pre></main></body></html>\n")


def create_app(recognizer: EmotionRecognizer, max_upload_mb: float = 10.0,
               max_pixels: int = MAX_PIXELS, max_busy: int = MAX_BUSY,
               allowed_hosts: list[str] | None = None) -> FastAPI:
    """The FastAPI application around one recognizer (shared by all requests, one at a time).

    allowed_hosts: Host header names served besides LOOPBACK_HOSTS ("*" = any).
    """
    max_bytes = int(max_upload_mb * 1024 * 1024)
    too_large = f"upload larger than the limit of {max_upload_mb:g} MB"
    app = FastAPI(
        title="fer_app emotion recognition",
        description="Find faces in a picture and tell their emotions (FER-2013 classes).",
        docs_url=None, redoc_url=None, middleware=[  # outermost first
            Middleware(TrustedHostMiddleware, allowed_hosts=LOOPBACK_HOSTS + (allowed_hosts or [])),
            Middleware(BusyLimit, max_busy=max_busy, path="/api/detect"),
            Middleware(BodyLimit, max_bytes=max_bytes + MULTIPART_OVERHEAD, detail=too_large)])
    # One worker thread decodes and analyzes one upload at a time: one decoded picture in
    # memory, and always the same thread's malloc arena (with a thread per request, each
    # arena kept its own few hundred MB after the answers). The network and the detector
    # are not made for concurrent calls either.
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fer_app-detect")

    def analyze(data: bytes) -> Detection:
        grey = decode_grey(data, max_pixels)  # (H, W)
        start = time.perf_counter()
        faces = recognizer.detect(grey)
        return Detection(faces=faces, width=grey.shape[1], height=grey.shape[0],
                         seconds=time.perf_counter() - start)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(app.openapi()))

    @app.get("/api/health", response_model=Health)
    def health() -> Health:
        """Whether the server is up, and which model and classes it uses."""
        return Health(status="ok", model=recognizer.model_name, classes=recognizer.class_names)

    @app.post("/api/detect", response_model=Detection,
              responses={400: {"description": "empty upload or not an image"},
                         413: {"description": "upload or picture larger than the server's limits"},
                         503: {"description": "the server is analyzing as many uploads as it may"}})
    async def detect(file: UploadFile = File(..., description="a picture: JPEG, PNG, WebP, ...")
                     ) -> Detection:
        """Find every face in the uploaded picture and give its box and emotion probabilities."""
        if file.size is not None and file.size > max_bytes:
            raise HTTPException(status_code=413, detail=too_large)
        data = await file.read(max_bytes)
        return await asyncio.get_running_loop().run_in_executor(worker, analyze, data)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def positive_number(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0-65535 (0: any free port)."""
    if not text.strip().isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535, got {text!r}")
    return int(text)


def host_names(text: str) -> list[str]:
    """argparse type: "a,b,*.c" -> ["a", "b", "*.c"]; "*" alone allows any Host."""
    names = [name.strip().lower() for name in text.split(",")]
    for name in names:
        wildcard = name == "*" or (name.startswith("*.") and "*" not in name[1:])
        if not name or " " in name or ("*" in name and not wildcard):
            raise argparse.ArgumentTypeError(
                f"{name!r} is not a host name (use names like a.lan, 10.0.0.5, *.example.com or *)")
    return names


def served_hosts(host: str, extra: list[str]) -> list[str]:
    """Host names served besides the loopback ones: the bound address unless it is
    a wildcard (0.0.0.0, ::) or a loopback name already, IPv6 literals in brackets, and
    ``extra``."""
    name = f"[{host}]" if ":" in host else host.lower()
    if host in ANY_ADDRESS or name in LOOPBACK_HOSTS:
        return extra
    return [name] + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fer_app.serve",
        description="Serve the emotion-recognition web page and JSON API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=port_number, default=8000, help="port to listen on")
    parser.add_argument("--max-upload-mb", type=positive_number, default=10.0,
                        help="largest accepted upload in megabytes (default 10)")
    parser.add_argument("--max-megapixels", type=positive_number, default=MAX_PIXELS / 1e6,
                        help="largest picture decoded, width x height "
                             f"(default {MAX_PIXELS / 1e6:g})")
    parser.add_argument("--max-busy", type=positive_int, default=MAX_BUSY,
                        help="uploads in the server at once; one more gets 503 "
                             f"(default {MAX_BUSY})")
    parser.add_argument("--allowed-hosts", type=host_names, default=[], metavar="A,B",
                        help="Host header names served besides 127.0.0.1, localhost, [::1] and "
                             "--host, e.g. myhost.lan,192.168.1.20 ('*' = any: no DNS-rebinding "
                             "protection)")
    add_recognizer_arguments(parser, live=True)
    args = parser.parse_args(argv)

    try:
        recognizer = build_recognizer(args)
    except (ModelFileError, BackendError, OSError, ValueError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    warm_up(recognizer)
    import uvicorn

    allowed = served_hosts(args.host, args.allowed_hosts)
    app = create_app(recognizer, max_upload_mb=args.max_upload_mb,
                     max_pixels=int(args.max_megapixels * 1e6), max_busy=args.max_busy,
                     allowed_hosts=allowed)
    print(f"fer_app: open http://{args.host}:{args.port}/ (API docs at /docs); Host names "
          f"served: {', '.join(LOOPBACK_HOSTS + allowed)}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
