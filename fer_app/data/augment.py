"""On-the-fly augmentation of a batch of faces, as the seed projects used it.

Shift (= pad by ``shift`` pixels and crop 48x48 at random), horizontal flip,
rotation, zoom and shear are composed into one affine map per image, and the
whole batch is warped at once: every output pixel p (x, y) reads the input at

    src = M_n @ (p - c - t_n) + c,     M_n = F_n^-1,  F_n = R(angle) Sh(shear) Z(zoom, flip)

(c = image centre, t_n = shift) by bilinear interpolation, all in NumPy array
operations (a few ms for a batch of 64 at 48x48). Pixels that fall outside the
image repeat the edge ("nearest") or take ``fill_value`` ("constant").
Optional random erasing then blanks one rectangle per chosen image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure


@dataclass
class AugmentConfig:
    """Random transforms and their strengths; a strength of 0 turns a transform off."""

    flip: float = 0.5  # probability of a horizontal flip
    shift: int = 4  # largest shift in pixels along x and y (integer, like pad + random crop)
    rotation: float = 10.0  # largest rotation, degrees either way
    zoom: float = 0.1  # scale drawn from [1 - zoom, 1 + zoom]
    shear: float = 5.0  # largest shear angle, degrees either way
    erase: float = 0.0  # probability of random erasing (off by default)
    erase_area: tuple[float, float] = (0.02, 0.15)  # erased fraction of the image area
    fill: str = "nearest"  # outside the image: "nearest" (edge pixel) or "constant"
    fill_value: float = 0.0  # the value used by fill="constant"

    def __post_init__(self) -> None:
        if self.fill not in ("nearest", "constant"):
            raise ValueError(f"fill must be 'nearest' or 'constant', got {self.fill!r}")
        if not (0.0 <= self.flip <= 1.0 and 0.0 <= self.erase <= 1.0):
            raise ValueError("flip and erase are probabilities in [0, 1]")
        if self.shift < 0 or self.rotation < 0 or self.shear < 0 or not 0.0 <= self.zoom < 1.0:
            raise ValueError("strengths must be >= 0 (and zoom < 1)")

    @classmethod
    def none(cls) -> AugmentConfig:
        """A config that changes nothing."""
        return cls(flip=0.0, shift=0, rotation=0.0, zoom=0.0, shear=0.0, erase=0.0)


def augment_batch(images: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Randomly transformed copies of ``images`` (N, 48, 48) -> float32 (N, 48, 48)."""
    images = np.asarray(images, dtype=np.float32)
    inverse, shift = random_affine(len(images), config, rng)
    warped = warp_affine(images, inverse, shift, config.fill, config.fill_value)
    if config.erase > 0:
        warped = random_erase(warped, config.erase, config.erase_area, rng)
    return warped


def random_affine(n: int, config: AugmentConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Inverse matrices M (N, 2, 2) and shifts t (N, 2) in pixels (x, y) drawn from ``config``."""
    flip = np.where(rng.random(n) < config.flip, -1.0, 1.0)
    angle = np.radians(rng.uniform(-config.rotation, config.rotation, n))
    shear = np.radians(rng.uniform(-config.shear, config.shear, n))
    scale = rng.uniform(1.0 - config.zoom, 1.0 + config.zoom, n)
    shift = rng.integers(-config.shift, config.shift + 1, size=(n, 2)).astype(np.float32)
    return inverse_matrices(flip, angle, shear, scale), shift


def inverse_matrices(flip: np.ndarray, angle: np.ndarray, shear: np.ndarray,
                     scale: np.ndarray) -> np.ndarray:
    """F^-1 = Z^-1 Sh^-1 R^-1 for F = R(angle) Sh(shear) Z(scale, flip); inputs (N,), output (N, 2, 2)."""
    cos, sin, tan = np.cos(angle), np.sin(angle), np.tan(shear)
    zeros, ones = np.zeros_like(angle), np.ones_like(angle)
    unrotate = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)  # R(-angle)
    unshear = np.stack([np.stack([ones, -tan], -1), np.stack([zeros, ones], -1)], -2)
    unscale = np.stack([np.stack([1 / (scale * flip), zeros], -1),
                        np.stack([zeros, 1 / scale], -1)], -2)
    return (unscale @ unshear @ unrotate).astype(np.float32)


def warp_affine(images: np.ndarray, inverse: np.ndarray, shift: np.ndarray,
                fill: str = "nearest", fill_value: float = 0.0) -> np.ndarray:
    """out[n, y, x] = images[n] sampled bilinearly at M_n @ ((x, y) - c - t_n) + c.

    images (N, H, W) float32, inverse M (N, 2, 2), shift t (N, 2) as (x, y) -> (N, H, W) float32.
    """
    n, height, width = images.shape
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)  # (H, W) each
    u = cols[None] - centre_x - shift[:, 0, None, None]  # (N, H, W)
    v = rows[None] - centre_y - shift[:, 1, None, None]  # (N, H, W)
    m = inverse[:, :, :, None, None]  # (N, 2, 2, 1, 1)
    source_x = m[:, 0, 0] * u + m[:, 0, 1] * v + centre_x
    source_y = m[:, 1, 0] * u + m[:, 1, 1] * v + centre_y
    return bilinear_sample(images, source_x, source_y, fill, fill_value)


def bilinear_sample(images: np.ndarray, x: np.ndarray, y: np.ndarray,
                    fill: str = "nearest", fill_value: float = 0.0) -> np.ndarray:
    """images (N, H, W) read at real coordinates x, y (N, H, W) -> (N, H, W) float32.

    Each image gets a one-pixel border (its edge, or ``fill_value``) and coordinates
    are clipped to that border, so outside points take the border value.
    """
    n, height, width = images.shape
    border = dict(mode="edge") if fill == "nearest" else dict(mode="constant", constant_values=fill_value)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), **border).reshape(-1)  # (N*(H+2)*(W+2),)
    x = np.clip(x, -1, width)
    y = np.clip(y, -1, height)
    x0 = np.minimum(np.floor(x), width - 1)  # left neighbour, so x0 + 1 stays on the border
    y0 = np.minimum(np.floor(y), height - 1)
    fx, fy = x - x0, y - y0  # (N, H, W) weights of the right / lower neighbours
    stride = width + 2
    top_left = (np.arange(n)[:, None, None] * (height + 2) + y0.astype(np.int64) + 1) * stride \
        + x0.astype(np.int64) + 1  # (N, H, W) flat index into padded
    top = padded[top_left] * (1 - fx) + padded[top_left + 1] * fx
    bottom = padded[top_left + stride] * (1 - fx) + padded[top_left + stride + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def random_erase(images: np.ndarray, probability: float, area: tuple[float, float],
                 rng: np.random.Generator) -> np.ndarray:
    """Blank one random rectangle (area fraction in ``area``, aspect 0.3..3.3) with the
    image's mean in each image chosen with ``probability``. (N, H, W) -> (N, H, W)."""
    n, height, width = images.shape
    target = rng.uniform(area[0], area[1], n) * height * width
    aspect = np.exp(rng.uniform(np.log(0.3), np.log(3.3), n))
    box_h = np.clip(np.round(np.sqrt(target * aspect)), 1, height).astype(np.int64)
    box_w = np.clip(np.round(np.sqrt(target / aspect)), 1, width).astype(np.int64)
    top = rng.integers(0, height - box_h + 1)
    left = rng.integers(0, width - box_w + 1)
    rows = np.arange(height)[None, :, None]
    cols = np.arange(width)[None, None, :]
    inside = (rows >= top[:, None, None]) & (rows < (top + box_h)[:, None, None]) \
        & (cols >= left[:, None, None]) & (cols < (left + box_w)[:, None, None])  # (N, H, W)
    chosen = (rng.random(n) < probability)[:, None, None]
    means = images.mean(axis=(1, 2), keepdims=True)  # (N, 1, 1)
    return np.where(inside & chosen, means, images).astype(np.float32)


def save_augmentation_grid(images: np.ndarray, config: AugmentConfig, path: str,
                           rng: np.random.Generator, copies: int = 7) -> None:
    """Write a PNG: one row per image (N, 48, 48), the original then ``copies`` augmented versions."""
    images = np.asarray(images, dtype=np.float32)
    low, high = float(images.min()), float(images.max())
    figure = Figure(figsize=(1.2 * (copies + 1), 1.2 * len(images)))
    axes = figure.subplots(len(images), copies + 1, squeeze=False)
    versions = [images] + [augment_batch(images, config, rng) for _ in range(copies)]
    for column, batch in enumerate(versions):
        for row, image in enumerate(batch):
            axes[row, column].imshow(image, cmap="gray", vmin=low, vmax=high)
            axes[row, column].axis("off")
        axes[0, column].set_title("original" if column == 0 else f"aug {column}", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
