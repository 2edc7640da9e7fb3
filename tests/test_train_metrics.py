"""Metrics against small cases worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from fer_app.training.metrics import (accuracy, classification_report, confusion_matrix,
                                      per_class_scores)

# 3 classes, 8 rows:
# true 0 0 0 1 1 2 2 2
# pred 0 0 1 1 2 2 2 0
TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2])
PRED = np.array([0, 0, 1, 1, 2, 2, 2, 0])


def test_confusion_matrix_by_hand():
    expected = np.array([[2, 1, 0],
                         [0, 1, 1],
                         [1, 0, 2]])
    np.testing.assert_array_equal(confusion_matrix(TRUE, PRED, 3), expected)


def test_accuracy_by_hand():
    assert accuracy(TRUE, PRED) == 5 / 8


def test_precision_recall_f1_by_hand():
    scores = per_class_scores(confusion_matrix(TRUE, PRED, 3))
    # precision: column sums 3, 2, 3 -> 2/3, 1/2, 2/3; recall: row sums 3, 2, 3 -> 2/3, 1/2, 2/3
    np.testing.assert_allclose(scores["precision"], [2 / 3, 1 / 2, 2 / 3])
    np.testing.assert_allclose(scores["recall"], [2 / 3, 1 / 2, 2 / 3])
    np.testing.assert_allclose(scores["f1"], [2 / 3, 1 / 2, 2 / 3])
    np.testing.assert_array_equal(scores["support"], [3, 2, 3])


def test_asymmetric_case_and_macro_f1():
    # true 0 0 0 0 1 1, pred 0 0 0 1 1 0: class 0 p=3/4 r=3/4; class 1 p=1/2 r=1/2
    # class 2 never occurs and is never predicted: p = r = f1 = 0 (no division by zero)
    report = classification_report(np.array([0, 0, 0, 0, 1, 1]), np.array([0, 0, 0, 1, 1, 0]),
                                   ["a", "b", "c"])
    assert report["n"] == 6
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["per_class"]["a"]["f1"] == pytest.approx(3 / 4)
    assert report["per_class"]["b"]["precision"] == pytest.approx(1 / 2)
    assert report["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["macro_f1"] == pytest.approx((3 / 4 + 1 / 2 + 0) / 3)


def test_precision_and_recall_differ_when_predictions_lean_one_way():
    # every row predicted 0: class 0 p = 2/5, r = 1, f1 = 2*0.4/1.4; class 1 p = r = 0
    scores = per_class_scores(confusion_matrix(np.array([0, 0, 1, 1, 1]), np.zeros(5, int), 2))
    np.testing.assert_allclose(scores["precision"], [0.4, 0.0])
    np.testing.assert_allclose(scores["recall"], [1.0, 0.0])
    np.testing.assert_allclose(scores["f1"], [0.8 / 1.4, 0.0])


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="3 true labels but 2 predictions"):
        confusion_matrix(np.array([0, 1, 1]), np.array([0, 1]), 2)
