"""The seed-004 workloads on the tinycnn side: a training step and an inference call.

Kept apart from the Keras code so that a process can run tinycnn without
importing TensorFlow (the memory benchmark measures each side alone).
"""
from __future__ import annotations

import numpy

from tinycnn import Tensor, nn, no_grad
from tinycnn import functional as F

BATCH, CLASSES, IMAGE = 64, 7, (1, 48, 48)   # IMAGE: (C, H, W) of one face


def training_batch(batch: int = BATCH, seed: int = 4) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Random images (N, 1, 48, 48) float32 and labels (N,) int64."""
    rng = numpy.random.default_rng(seed)
    return (rng.standard_normal((batch, *IMAGE), dtype=numpy.float32),
            rng.integers(0, CLASSES, batch).astype(numpy.int64))


def tinycnn_train_step(model: nn.Module, optimizer, x: numpy.ndarray, labels: numpy.ndarray):
    """A callable: forward, softmax cross-entropy, backward, optimizer step; returns the loss."""
    def step():
        loss = F.softmax_cross_entropy(model(Tensor(x)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.data
    return step


def tinycnn_inference(model: nn.Module, x: numpy.ndarray):
    """A callable: a forward pass without the graph (call ``model.eval()`` first); returns logits."""
    def infer():
        with no_grad():
            return model(Tensor(x)).data
    return infer
