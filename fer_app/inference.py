"""Load a trained model file and classify 48x48 grey faces, optionally with
test-time augmentation (TTA).

    classifier = load_classifier("default")          # fer_app/weights/default.npz
    probabilities = classifier.predict_proba(faces)  # faces (N, 48, 48) -> (N, K)

A model file is a tinycnn.save file whose metadata holds "arch", "num_classes",
"class_names" and "normalization" (Normalizer.to_dict()), so it needs no other file.
An ensemble file (``python -m fer_app.ensemble``) has arch "ensemble" and lists its
"members"; it loads the same way.
"""
from __future__ import annotations

import os

import numpy as np

import tinycnn
from tinycnn import backend as backends
from tinycnn import nn

from .checkpoint import MODEL_PREFIX
from .models import build_model
from .models.ensemble import Ensemble
from .normalize import Normalizer

WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
# The shipped models by name: "default" the most accurate (still pictures), "fast" one small
# network (live video, camera and the web page).
NAMED_MODELS = {"default": os.path.join(WEIGHTS, "default.npz"),
                "fast": os.path.join(WEIGHTS, "fast.npz")}
DEFAULT_MODEL = NAMED_MODELS["default"]
BATCH_SIZE = 256
TTA_SHIFT = 2  # pixels: TTA views are shifted by this much left, right, up and down


class ModelFileError(Exception):
    """A model file is missing or does not describe a fer_app model."""


def default_backend_name() -> str:
    """"numba" when its kernels can run here, else "numpy"."""
    try:
        backends.get("numba")
    except backends.BackendError:
        return "numpy"
    return "numba"


def tta_views(faces: np.ndarray) -> list[np.ndarray]:
    """The views TTA averages over: the faces and their mirror images, each unshifted and
    shifted by TTA_SHIFT pixels in the four directions (edges repeated): 10 views.

    faces (N, 48, 48) -> list of 10 arrays (N, 48, 48) of faces' dtype.
    """
    s = TTA_SHIFT
    padded = np.pad(faces, ((0, 0), (s, s), (s, s)), mode="edge")  # (N, 48+2s, 48+2s)
    height, width = faces.shape[1:]
    views = []
    for image in (padded, padded[:, :, ::-1]):
        for dy, dx in ((0, 0), (-s, 0), (s, 0), (0, -s), (0, s)):
            views.append(image[:, s + dy:s + dy + height, s + dx:s + dx + width])
    return views


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (N, K), computed stably."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def fuse_network(model: nn.Module):
    """The inference-only form of a network (``tinycnn.fuse``) or of an ensemble (each member fused)."""
    return model.fuse() if isinstance(model, Ensemble) else tinycnn.fuse(model)


class Classifier:
    """A trained network with the class names and normalization it was trained with.

    ``fused=True`` (the default) predicts with the network's fused form (``fuse_network``:
    batch norm folded into the weights, no autograd graph; the same numbers up to float32
    rounding), made when the Classifier is made: later changes to ``model``'s weights
    need a new Classifier. ``fused=False`` runs ``model`` itself in eval mode.
    """

    def __init__(self, model: nn.Module, class_names: list[str], normalizer: Normalizer,
                 metadata: dict | None = None, fused: bool = True):
        self.model = model
        self.class_names = list(class_names)
        self.normalizer = normalizer
        self.metadata = metadata or {}
        self.fused = fuse_network(model) if fused else None

    def predict_logits(self, faces: np.ndarray, batch_size: int = BATCH_SIZE) -> np.ndarray:
        """faces (N, 48, 48) grey values 0..255 (uint8 or float) -> logits (N, K) float32.

        Runs the fused network, or the model in eval mode (running batch-norm statistics,
        no dropout) without a graph, ``batch_size`` faces at a time.
        """
        faces = np.asarray(faces)
        if faces.ndim != 3 or faces.shape[1:] != (48, 48):
            raise ValueError(f"faces must have shape (N, 48, 48), got {faces.shape}")
        outputs = []
        for start in range(0, len(faces), batch_size):
            x = self.normalizer.apply(faces[start:start + batch_size])  # (B, 1, 48, 48)
            outputs.append(self._logits(x))
        if not outputs:
            return np.zeros((0, len(self.class_names)), np.float32)
        return np.concatenate(outputs).astype(np.float32)

    def _logits(self, x: np.ndarray) -> np.ndarray:
        """x (B, 1, 48, 48) normalized -> logits (B, K) on the host."""
        if self.fused is not None:
            return backends.to_numpy(self.fused(x))
        was_training = self.model.training
        self.model.eval()
        with tinycnn.no_grad():
            logits = self.model(tinycnn.Tensor(x)).numpy()
        self.model.train(was_training)
        return logits

    def predict_proba(self, faces: np.ndarray, tta: bool = False) -> np.ndarray:
        """Class probabilities (N, K) float32 for faces (N, 48, 48).

        tta=True: the mean of the probabilities over :func:`tta_views` (10 forward passes).
        """
        if not tta:
            return softmax(self.predict_logits(faces))
        return self.predict_proba_views(faces).mean(axis=0)

    def predict_proba_views(self, faces: np.ndarray) -> np.ndarray:
        """Class probabilities of each of the :func:`tta_views`: (10, N, K) float32 for
        faces (N, 48, 48). Entry 0 is the plain pass (the faces as they are)."""
        views = tta_views(np.asarray(faces))
        return np.stack([softmax(self.predict_logits(view)) for view in views])

    def predict(self, faces: np.ndarray, tta: bool = False) -> np.ndarray:
        """Predicted class indices (N,) int64."""
        return self.predict_proba(faces, tta).argmax(axis=1)


def read_model_file(path: str) -> tuple[dict, dict]:
    """(state, metadata) of a model file (model.npz, or the model inside a training
    checkpoint last.npz), with a clear error if it is not one."""
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: model file not found")
    try:
        state, metadata = tinycnn.load(path)
    except (OSError, ValueError) as error:
        raise ModelFileError(f"{path}: not a readable model file ({error})") from None
    missing = [key for key in ("arch", "num_classes", "class_names", "normalization")
               if key not in metadata]
    if missing:
        raise ModelFileError(f"{path}: not a fer_app model file (metadata lacks {', '.join(missing)})")
    if any(name.startswith(MODEL_PREFIX) for name in state):  # a training checkpoint (last.npz)
        state = {name[len(MODEL_PREFIX):]: value for name, value in state.items()
                 if name.startswith(MODEL_PREFIX)}
    return state, metadata


def build_network(metadata: dict) -> nn.Module:
    """A fresh network of the architecture a model file's metadata names."""
    num_classes = int(metadata["num_classes"])
    if metadata["arch"] == "ensemble":
        return Ensemble([build_model(member["arch"], num_classes) for member in metadata["members"]])
    return build_model(metadata["arch"], num_classes)


def model_path(model: str) -> str:
    """The file of a shipped model's name ("default", "fast"), or ``model`` itself (a path)."""
    return NAMED_MODELS.get(model, model)


def load_classifier(model: str = "default", backend: str | None = None,
                    fused: bool = True) -> Classifier:
    """The classifier stored in a model file, or a shipped model by name ("default":
    fer_app/weights/default.npz, "fast": fer_app/weights/fast.npz) on ``backend`` (None:
    numba if it runs here, else numpy). The backend becomes tinycnn's active backend.
    ``fused``: see :class:`Classifier`."""
    path = model_path(model)
    state, metadata = read_model_file(path)
    backends.use(backend or default_backend_name())
    network = build_network(metadata)
    try:
        network.load_state_dict(state)
    except (KeyError, ValueError) as error:
        raise ModelFileError(f"{path}: weights do not fit {metadata['arch']}: {error}") from None
    network.eval()
    return Classifier(network, metadata["class_names"],
                      Normalizer.from_dict(metadata["normalization"]), metadata, fused)
