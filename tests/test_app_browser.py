"""The web page in a real browser: headless Chromium driven by Playwright, with Chromium's
fake camera playing a .y4m video of real FER-2013 faces.

Needs the `playwright` Python package and a Chromium binary (Debian: `apt-get install
chromium`, at /usr/bin/chromium; or set FER_APP_CHROMIUM). No `playwright install`:
Playwright drives the system Chromium. Set FER_APP_SCREENSHOT=docs/screenshot.png to
save a screenshot of the page with live boxes (used for the README).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy
import pytest
from PIL import Image

from fer_app.data.load import EMOTIONS
from fer_app.recognition.draw import EMOTION_COLORS
from fer_app.recognition.inference import DEFAULT_MODEL
from fer_app.recognition.scenes import iou
from tests.app_support import findable_faces, random_model_file, scene_with_faces

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not "
                               "installed (pip install playwright); the browser tests need it")
CHROMIUM = os.environ.get("FER_APP_CHROMIUM") or shutil.which("chromium") or shutil.which(
    "chromium-browser")
if CHROMIUM is None:
    pytest.skip("no Chromium binary found (apt-get install chromium, or set FER_APP_CHROMIUM)",
                allow_module_level=True)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAIT_MS = 60_000  # generous: two cores are shared with training jobs


def write_y4m(path, frames: list[numpy.ndarray], fps: int = 10) -> None:
    """A YUV4MPEG2 video (what Chromium's fake camera plays): grey frames (H, W) uint8 as
    4:2:0 frames with neutral chroma (128)."""
    height, width = frames[0].shape
    chroma = numpy.full((height // 2) * (width // 2), 128, numpy.uint8).tobytes()
    with open(path, "wb") as file:
        file.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            file.write(b"FRAME\n" + numpy.ascontiguousarray(frame).tobytes() + chroma + chroma)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def scene():
    """Two real faces on a 640x480 background and their boxes."""
    faces, _ = findable_faces(2)
    return scene_with_faces(faces, seed=4)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python -m fer_app.serve` on a free port (the shipped model if present) -> base URL."""
    folder = tmp_path_factory.mktemp("server")
    model = DEFAULT_MODEL if os.path.isfile(DEFAULT_MODEL) else random_model_file(folder)
    port = free_port()
    log = open(folder / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "fer_app.serve", "--host", "127.0.0.1", "--port", str(port),
         "--model", model], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process, folder / "server.log")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def wait_for_health(url: str, process: subprocess.Popen, log_path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{open(log_path).read()}")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server did not answer within {seconds} s:\n{open(log_path).read()}")


@pytest.fixture(scope="module")
def browser(scene, tmp_path_factory):
    """Headless Chromium whose camera plays the scene (a few frames, looped)."""
    camera = tmp_path_factory.mktemp("camera") / "faces.y4m"
    write_y4m(camera, [scene[0]] * 5)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update",
            "--disable-default-apps", "--disable-sync", "--disable-extensions",
            "--no-first-run", "--metrics-recording-only", "--mute-audio",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(server)
    page.wait_for_function("document.getElementById('model-name').textContent !== '...'",
                           timeout=WAIT_MS)
    yield page
    context.close()


def shown_faces(page) -> list[dict]:
    """The faces listed on the page: emotion, score and box of each #detections item."""
    return page.eval_on_selector_all("#detections li.detection", """items => items.map(item => ({
        emotion: item.dataset.emotion, box: item.dataset.box.split(',').map(Number),
        score: Number(item.querySelector('.score').textContent)}))""")


def canvas_pixel(page, x: int, y: int) -> list[int]:
    return page.evaluate(f"Array.from(document.getElementById('view').getContext('2d')"
                         f".getImageData({x}, {y}, 1, 1).data)")


def assert_boxes_drawn(page, faces: list[dict], expected_boxes) -> None:
    """Each listed face sits on a pasted face, and its box is drawn in its emotion's colour."""
    assert faces and all(face["emotion"] in EMOTIONS for face in faces)
    for face in faces:
        assert max(iou(face["box"], box) for box in expected_boxes) > 0.5
        x, y, w, h = face["box"]
        scale = page.evaluate("document.getElementById('view').width") / 640
        red, green, blue, _ = canvas_pixel(page, round(x * scale), round((y + h / 2) * scale))
        assert numpy.abs(numpy.array([red, green, blue]) - EMOTION_COLORS[face["emotion"]]).max() < 40


def test_live_camera_shows_boxes_and_emotions(page, scene):
    page.click("#camera-button")
    page.wait_for_function(
        "/\\((\\d+) frames\\)/.test(document.getElementById('status').textContent) && "
        "Number(document.getElementById('status').textContent.match(/\\((\\d+) frames\\)/)[1]) >= 3",
        timeout=WAIT_MS)  # several updates: the camera keeps streaming
    assert page.inner_text("#camera-button") == "Stop camera"
    faces = shown_faces(page)
    assert len(faces) == 2
    if os.environ.get("FER_APP_SCREENSHOT"):
        page.screenshot(path=os.environ["FER_APP_SCREENSHOT"])
    page.click("#camera-button")  # stop: the last frame and boxes stay on the canvas
    page.wait_for_function("document.getElementById('status').textContent === 'camera stopped'")
    assert_boxes_drawn(page, faces, scene[1])


def test_upload_shows_boxes_and_emotions(page, scene, tmp_path):
    picture = tmp_path / "two_faces.png"
    Image.fromarray(scene[0]).save(picture)
    page.set_input_files("#file-input", str(picture))
    page.wait_for_function("document.getElementById('status').textContent.includes('face(s)')",
                           timeout=WAIT_MS)
    assert "two_faces.png: 2 face(s)" in page.inner_text("#status")
    assert_boxes_drawn(page, shown_faces(page), scene[1])


def test_bad_upload_shows_the_error(page, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    page.set_input_files("#file-input", str(bad))
    page.wait_for_selector("#status.error", timeout=WAIT_MS)
    assert "not an image" in page.inner_text("#status")
    assert shown_faces(page) == []
