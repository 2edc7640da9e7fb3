"""fer_app: facial-expression recognition on FER-2013, built on the tinycnn engine."""


def __getattr__(name: str):
    """``fer_app.EmotionRecognizer`` is imported on first use: it needs OpenCV (the [app]
    extra), which training and evaluation do not."""
    if name == "EmotionRecognizer":
        from .recognition.recognizer import EmotionRecognizer
        return EmotionRecognizer
    raise AttributeError(f"module 'fer_app' has no attribute {name!r}")
