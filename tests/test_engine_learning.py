"""A small CNN built from tinycnn layers learns a synthetic 4-class image task."""
from __future__ import annotations

import numpy

import tinycnn
from tinycnn import Tensor, nn, optim
from tinycnn import functional as F

SIZE = 12
# (row step, column step) along the bar for each class
DIRECTIONS = {0: (0, 1), 1: (1, 0), 2: (1, 1), 3: (1, -1)}   # horizontal, vertical, \, /


def oriented_bars(count: int, rng: numpy.random.Generator):
    """Noisy 12x12 images, each with one 7-pixel bar: images (N, 1, 12, 12), labels (N,)."""
    images = rng.normal(0.0, 0.3, (count, 1, SIZE, SIZE))
    labels = rng.integers(0, 4, count)
    for image, label in zip(images, labels):
        row, column = rng.integers(3, SIZE - 3, 2)
        row_step, column_step = DIRECTIONS[int(label)]
        for t in range(-3, 4):
            image[0, row + t * row_step, column + t * column_step] += 1.0
    return images.astype(numpy.float32), labels


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),    # 6x6
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),  # 3x3
        nn.Flatten(), nn.Dropout(0.1), nn.Linear(16 * 3 * 3, 4))


def test_small_cnn_learns_oriented_bars(backend_name):
    rng = numpy.random.default_rng(0)
    train_images, train_labels = oriented_bars(480, rng)
    test_images, test_labels = oriented_bars(200, rng)
    tinycnn.manual_seed(0)
    model = small_cnn()
    optimizer = optim.Adam(model.parameters(), lr=0.01)

    model.train()
    for epoch in range(3):
        order = rng.permutation(len(train_labels))
        for start in range(0, len(order), 32):
            batch = order[start:start + 32]
            loss = F.softmax_cross_entropy(model(Tensor(train_images[batch])), train_labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    model.eval()
    with tinycnn.no_grad():
        predictions = model(Tensor(test_images)).numpy().argmax(axis=1)
    accuracy = (predictions == test_labels).mean()
    assert accuracy > 0.9, f"held-out accuracy {accuracy:.3f}"
