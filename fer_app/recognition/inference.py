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

from ..cli import UserError
from ..data.normalize import Normalizer
from ..models import ARCHITECTURES, build_model
from ..models.ensemble import Ensemble
from ..training.checkpoint import MODEL_PREFIX

WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")
# The shipped models by name: "default" the most accurate (still pictures), "fast" one small
# network (live video, camera and the web page).
NAMED_MODELS = {"default": os.path.join(WEIGHTS, "default.npz"),
                "fast": os.path.join(WEIGHTS, "fast.npz")}
DEFAULT_MODEL = NAMED_MODELS["default"]
BATCH_SIZE = 256
TTA_SHIFT = 2  # pixels: TTA views are shifted by this much left, right, up and down


class ModelFileError(UserError):
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
    checkpoint last.npz), checked (see :func:`check_metadata`, :func:`check_weights`)
    with a clear ModelFileError if it is not a usable model."""
    if os.path.isdir(path):
        raise ModelFileError(f"{path}: is a folder; give the model file in it "
                             f"(e.g. {os.path.join(path, 'model.npz')})")
    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: model file not found; give a model .npz file or a shipped "
                             f"model's name ({', '.join(NAMED_MODELS)})")
    try:
        state, metadata = tinycnn.load(path)
    except tinycnn.SerializationError as error:
        raise ModelFileError(f"{error}; give an intact model file (train one again or copy it "
                             f"again)") from None
    check_metadata(path, metadata)
    if any(name.startswith(MODEL_PREFIX) for name in state):  # a training checkpoint (last.npz)
        state = {name[len(MODEL_PREFIX):]: value for name, value in state.items()
                 if name.startswith(MODEL_PREFIX)}
    check_weights(path, state)
    return state, metadata


def check_metadata(path: str, metadata: dict) -> None:
    """A ModelFileError unless the metadata describes a model this version can build:
    known architecture(s), a positive whole num_classes, that many distinct class_names,
    and a valid normalization."""
    missing = [key for key in ("arch", "num_classes", "class_names", "normalization")
               if key not in metadata]
    if missing:
        raise ModelFileError(f"{path}: not a fer_app model file (metadata lacks {', '.join(missing)})")
    members = metadata.get("members") if metadata["arch"] == "ensemble" else [metadata]
    if not isinstance(members, list) or not members or \
            not all(isinstance(member, dict) for member in members):
        raise ModelFileError(f"{path}: an ensemble whose metadata lists no members")
    for member in members:
        if not isinstance(member.get("arch"), str) or member["arch"] not in ARCHITECTURES:
            raise ModelFileError(f"{path}: unknown architecture {member.get('arch')!r}; this "
                                 f"version builds {', '.join(ARCHITECTURES)}")
    num_classes, names = metadata["num_classes"], metadata["class_names"]
    if type(num_classes) is not int or num_classes < 1:
        raise ModelFileError(f"{path}: num_classes must be a positive whole number, got {num_classes!r}")
    if not isinstance(names, list) or len(names) != num_classes or \
            not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        raise ModelFileError(f"{path}: class_names must be {num_classes} different names "
                             f"(num_classes), got {names!r}")
    try:
        Normalizer.from_dict(metadata["normalization"])
    except ValueError as error:
        raise ModelFileError(f"{path}: bad normalization in its metadata: {error}") from None


def check_weights(path: str, state: dict) -> None:
    """A ModelFileError unless every array holds numbers and every floating-point one is
    finite: a model with NaN or infinite weights (a diverged run) answers nonsense, so it
    is refused rather than scored."""
    for name, value in state.items():
        if value.dtype.kind not in "biuf":
            raise ModelFileError(f"{path}: array {name!r} holds {value.dtype}, not numbers")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            bad = int((~np.isfinite(value)).sum())
            raise ModelFileError(f"{path}: array {name!r} holds {bad} NaN or infinite value(s); "
                                 f"the model is broken (a diverged run?): use an earlier one")


def build_network(metadata: dict) -> nn.Module:
    """A fresh network of the architecture a model file's metadata names."""
    num_classes = int(metadata["num_classes"])
    if metadata["arch"] == "ensemble":
        return Ensemble([build_model(member["arch"], num_classes) for member in metadata["members"]])
    return build_model(metadata["arch"], num_classes)


def loaded_network(path: str, state: dict, metadata: dict) -> nn.Module:
    """The network ``metadata`` names with the weights ``state`` (read from ``path``);
    a ModelFileError if they do not fit it."""
    network = build_network(metadata)
    try:
        network.load_state_dict(state)
    except (KeyError, ValueError) as error:  # names (KeyError), shapes or dtypes (ValueError)
        raise ModelFileError(f"{path}: weights do not fit {metadata['arch']}: {error.args[0]}") from None
    return network


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
    network = loaded_network(path, state, metadata)
    network.eval()
    return Classifier(network, metadata["class_names"],
                      Normalizer.from_dict(metadata["normalization"]), metadata, fused)
