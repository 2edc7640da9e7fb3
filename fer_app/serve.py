"""A web page and a JSON API for emotion recognition (FastAPI + one small HTML/JS page).

    python -m fer_app.serve                       # http://127.0.0.1:8000
    python -m fer_app.serve --host 0.0.0.0 --port 8080 --max-upload-mb 5

    GET  /             the page: upload a photo, or turn on the webcam for live boxes and bars
    POST /api/detect   multipart form field "file" (an image) ->
                       {"faces": [{"box", "emotion", "score", "probabilities"}, ...],
                        "width": W, "height": H, "seconds": t}
    GET  /api/health   {"status": "ok", "model": ..., "classes": [...]}
    GET  /docs         FastAPI's OpenAPI page

Bad uploads get a 4xx JSON error {"detail": "..."}: 400 empty or not an image,
413 larger than --max-upload-mb or than 40 megapixels, 422 no "file" field. The
page and its script are served from fer_app/static/ (no external CDN), so it
works offline.
"""
from __future__ import annotations

import os

# One BLAS thread, set before NumPy loads OpenBLAS: a frame's 1-4 faces make small
# matrix products, and OpenBLAS's threads cost more than they give (a video ran at 8.6
# instead of 2.3 frames/s on the shared 2-core machine). Set the variable to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import io
import sys
import threading
import time

import numpy
from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel

from .predict import add_recognizer_arguments, build_recognizer
from .recognizer import EmotionRecognizer, pil_to_array

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MULTIPART_OVERHEAD = 64 * 1024  # bytes of form headers allowed on top of the file itself
MAX_PIXELS = 40_000_000         # largest picture decoded (width x height)


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


def decode_image(data: bytes) -> numpy.ndarray:
    """Uploaded bytes -> (H, W, 3) RGB uint8; HTTP 400 when they are not a picture,
    413 when the picture has more than MAX_PIXELS pixels (a small file can hold a huge
    blank image)."""
    if not data:
        raise HTTPException(status_code=400, detail="empty upload: the file has no bytes")
    try:
        with Image.open(io.BytesIO(data)) as picture:
            width, height = picture.size
            if width * height > MAX_PIXELS:
                raise HTTPException(status_code=413, detail=(
                    f"image too large: {width}x{height} pixels (limit {MAX_PIXELS // 10**6} "
                    f"megapixels)"))
            picture.load()
            return pil_to_array(picture)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise HTTPException(status_code=400,
                            detail=f"not an image PIL can read ({type(error).__name__})") from None


def create_app(recognizer: EmotionRecognizer, max_upload_mb: float = 10.0) -> FastAPI:
    """The FastAPI application around one recognizer (shared by all requests, one at a time)."""
    app = FastAPI(title="fer_app emotion recognition",
                  description="Find faces in a picture and tell their emotions (FER-2013 classes).")
    max_bytes = int(max_upload_mb * 1024 * 1024)
    lock = threading.Lock()  # the network and the detector are not made for concurrent calls

    @app.middleware("http")
    async def refuse_huge_bodies(request: Request, call_next):
        """Answer 413 before reading a body whose declared length is far over the limit."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes + MULTIPART_OVERHEAD:
            return JSONResponse(status_code=413, content={
                "detail": f"upload larger than the limit of {max_upload_mb:g} MB"})
        return await call_next(request)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(os.path.join(STATIC_DIR, "index.html"))

    @app.get("/api/health", response_model=Health)
    def health() -> Health:
        """Whether the server is up, and which model and classes it uses."""
        return Health(status="ok", model=recognizer.model_name, classes=recognizer.class_names)

    @app.post("/api/detect", response_model=Detection,
              responses={400: {"description": "empty upload or not an image"},
                         413: {"description": "upload larger than the server's limits"}})
    def detect(file: UploadFile = File(..., description="a picture: JPEG, PNG, WebP, ...")
               ) -> Detection:
        """Find every face in the uploaded picture and give its box and emotion probabilities."""
        data = file.file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise HTTPException(status_code=413,
                                detail=f"upload larger than the limit of {max_upload_mb:g} MB")
        rgb = decode_image(data)  # (H, W, 3)
        start = time.perf_counter()
        with lock:
            faces = recognizer.detect(rgb, color="rgb")
        return Detection(faces=faces, width=rgb.shape[1], height=rgb.shape[0],
                         seconds=time.perf_counter() - start)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fer_app.serve",
        description="Serve the emotion-recognition web page and JSON API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--max-upload-mb", type=float, default=10.0,
                        help="largest accepted upload in megabytes (default 10)")
    add_recognizer_arguments(parser)
    args = parser.parse_args(argv)

    import uvicorn

    app = create_app(build_recognizer(args), max_upload_mb=args.max_upload_mb)
    print(f"fer_app: open http://{args.host}:{args.port}/ (API docs at /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
