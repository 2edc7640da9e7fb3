"""The tinycnn side of the benchmarks: seed-004's training step, and inference calls
(eval-mode layers, or the fused model of ``tinycnn.fuse``).

Kept apart from the Keras code so that a process can run tinycnn without
importing TensorFlow (the memory benchmark measures each side alone).
"""
from __future__ import annotations

import numpy

from tinycnn import Tensor, nn, no_grad, threads
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


def with_batch_norm_statistics(model: nn.Module, seed: int = 7) -> nn.Module:
    """``model`` in eval mode with random running mean and variance and affine weights in
    every batch norm: fresh ones are the identity, which would leave their folding untested."""
    rng = numpy.random.default_rng(seed)
    for layer in model.modules():
        if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = layer.weight.shape[0]
            layer.running_mean = rng.normal(0, 0.5, c).astype(numpy.float32)
            layer.running_var = rng.uniform(0.3, 3.0, c).astype(numpy.float32)
            layer.weight.data = rng.uniform(0.5, 1.5, c).astype(numpy.float32)
            layer.bias.data = rng.normal(0, 0.3, c).astype(numpy.float32)
    return model.eval()


def recording_thread_counts(fn, counts: set):
    """``fn``, adding the thread count ``tinycnn.threads`` gives at each call to ``counts``."""
    def run():
        counts.add(threads.threads())
        return fn()
    return run


def tinycnn_fused_inference(fused, x: numpy.ndarray, threads_used: set):
    """A callable: ``fused(x)`` of a ``tinycnn.fuse`` model, x (N, C, H, W) -> logits
    (N, classes); adds the thread count ``tinycnn.threads`` gives the call to ``threads_used``."""
    return recording_thread_counts(lambda: fused(x), threads_used)
