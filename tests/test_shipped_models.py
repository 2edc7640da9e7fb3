"""The two shipped models: "fast" is one network of at most 0.2 GFLOP and what the live
paths (video, camera, web page) use by default; still pictures keep "default" with TTA."""
from __future__ import annotations

import pytest

from fer_app import predict, serve, video
from fer_app.model_card import FAST_MAX_GFLOPS, gflops
from fer_app.models.ensemble import Ensemble
from fer_app.recognition.inference import load_classifier
from fer_app.recognition.recognizer import EmotionRecognizer


class Built(Exception):
    """Raised by the stand-in build_recognizer to hand back the options a CLI parsed."""


def options_of(module, argv: list[str], monkeypatch):
    def capture(args):
        raise Built(args)
    monkeypatch.setattr(module, "build_recognizer", capture)
    with pytest.raises(Built) as caught:
        module.main(argv)
    return caught.value.args[0]


def test_fast_model_loads_by_name_and_is_one_small_network():
    classifier = load_classifier("fast", "numpy")
    assert not isinstance(classifier.model, Ensemble)
    assert gflops(classifier) <= FAST_MAX_GFLOPS
    assert classifier.class_names == load_classifier("default", "numpy").class_names
    recognizer = EmotionRecognizer(model="fast")
    assert recognizer.model_name == "fast"


def test_live_paths_use_the_fast_model_in_one_pass(monkeypatch):
    for module, argv in ((video, ["--input", "clip.mp4"]), (serve, [])):
        args = options_of(module, argv, monkeypatch)
        assert (args.model, args.tta) == ("fast", False), module.__name__


def test_still_pictures_use_the_default_model_with_tta(monkeypatch):
    args = options_of(predict, ["photo.jpg"], monkeypatch)
    assert (args.model, args.tta) == ("default", True)
    assert EmotionRecognizer.__init__.__defaults__[0] == "default"
