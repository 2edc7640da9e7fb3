"""The web API (fer_app/serve.py) through FastAPI's TestClient: good and bad uploads."""
from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fer_app.data.load import EMOTIONS
from fer_app.recognition.recognizer import EmotionRecognizer
from fer_app.serve import create_app
from tests.app_support import findable_faces, matched_boxes, random_model_file, scene_with_faces


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory):
    return EmotionRecognizer(model=random_model_file(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def client(recognizer):
    return TestClient(create_app(recognizer, max_upload_mb=0.5), base_url="http://127.0.0.1:8000")


@pytest.fixture(scope="module")
def scene():
    faces, _ = findable_faces(2)
    return scene_with_faces(faces)


def encoded(array, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def test_health(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["classes"] == EMOTIONS
    assert body["model"] == "random_model.npz"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_detect_finds_the_faces_of_an_upload(client, recognizer, scene, fmt):
    picture, boxes = scene
    data = encoded(picture, fmt)
    response = client.post("/api/detect", files={"file": (f"scene.{fmt.lower()}", data)})
    assert response.status_code == 200
    body = response.json()
    assert (body["width"], body["height"]) == (640, 480) and body["seconds"] >= 0
    assert matched_boxes([face["box"] for face in body["faces"]], boxes) == 2
    expected = recognizer.detect(Image.open(io.BytesIO(data)))
    assert [face["box"] for face in body["faces"]] == [face["box"] for face in expected]
    for face, other in zip(body["faces"], expected):
        assert face["probabilities"] == pytest.approx(other["probabilities"])


@pytest.mark.parametrize("data, status, words", [
    (b"", 400, "empty"),
    (b"this is plain text, not a picture", 400, "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 400, "not an image"),          # a broken PNG
    (b"\x00" * (530 * 1024), 413, "larger than the limit of 0.5 MB"),   # caught while reading
    (b"\x00" * (900 * 1024), 413, "larger than the limit of 0.5 MB"),   # refused by its length
], ids=["empty", "text", "broken-png", "slightly-too-large", "too-large"])
def test_bad_uploads_get_a_clear_json_error_and_the_server_keeps_serving(client, scene, data,
                                                                          status, words):
    response = client.post("/api/detect", files={"file": ("upload.jpg", data)})
    assert response.status_code == status
    assert words in response.json()["detail"]
    assert client.get("/api/health").status_code == 200
    good = client.post("/api/detect", files={"file": ("scene.png", encoded(scene[0], "PNG"))})
    assert good.status_code == 200 and len(good.json()["faces"]) == 2


def test_a_small_file_with_a_huge_picture_is_refused(client):
    huge = Image.new("L", (8000, 6000))  # 48 megapixels of black: a few kB as PNG
    buffer = io.BytesIO()
    huge.save(buffer, format="PNG")
    assert len(buffer.getvalue()) < 512 * 1024
    response = client.post("/api/detect", files={"file": ("huge.png", buffer.getvalue())})
    assert response.status_code == 413
    assert "8000x6000 pixels" in response.json()["detail"]


def test_missing_file_field_is_a_422(client):
    response = client.post("/api/detect", files={"picture": ("x.png", b"123")})
    assert response.status_code == 422
    assert "file" in str(response.json()["detail"])


def test_page_static_files_and_api_docs(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="file-input"' in page.text
    assert "http" not in page.text.split("<footer>")[0]  # no external CDN
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/detect" in docs.text
    schema = client.get("/openapi.json").json()
    assert "/api/detect" in schema["paths"] and "/api/health" in schema["paths"]


def test_serve_runs_a_face_through_the_network_before_it_listens(monkeypatch, tmp_path, capsys):
    import uvicorn

    from fer_app import serve
    calls = []
    original = EmotionRecognizer.classify_crops

    def recording_classify(self, faces):
        calls.append(("classify", faces.shape))
        return original(self, faces)

    monkeypatch.setattr(EmotionRecognizer, "classify_crops", recording_classify)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append("listen"))
    assert serve.main(["--model", random_model_file(tmp_path)]) == 0
    assert calls == [("classify", (1, 48, 48)), "listen"]
    assert "preparing the model" in capsys.readouterr().out
