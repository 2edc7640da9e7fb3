"""Pictures in, emotions out: safe picture loading, face detection and tracking, model files
and the classifier (``inference``), the ``EmotionRecognizer``, drawing, test scenes."""
