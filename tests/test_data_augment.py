"""Augmentation: shapes/dtype/order kept, exact identities, geometry checks, and the vectorized
warp held to a plain per-pixel reference."""
import math

import numpy as np
import pytest

from fer_app.data.augment import (AugmentConfig, augment_batch, inverse_matrices, random_affine,
                                  save_augmentation_grid, warp_affine)


def faces(n=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48)).astype(np.uint8)


def smooth_faces(n=8, seed=0):
    """Blocky images (6x6 random grey blocks of 8x8 pixels) that survive small warps."""
    blocks = np.random.default_rng(seed).integers(0, 256, (n, 6, 6))
    return np.kron(blocks, np.ones((8, 8))).astype(np.float32)


def only(**strengths):
    """A config with every transform off except the ones given."""
    return AugmentConfig(**{**vars(AugmentConfig.none()), **strengths})


def reference_warp(image, inverse, shift, fill, fill_value):
    """Plain per-pixel bilinear warp of one (H, W) image (the definition warp_affine implements)."""
    height, width = image.shape
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2

    def pixel(y, x):
        if 0 <= y < height and 0 <= x < width:
            return float(image[y, x])
        if fill == "nearest":
            return float(image[min(max(y, 0), height - 1), min(max(x, 0), width - 1)])
        return fill_value

    out = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            u, v = x - centre_x - shift[0], y - centre_y - shift[1]
            sx = inverse[0, 0] * u + inverse[0, 1] * v + centre_x
            sy = inverse[1, 0] * u + inverse[1, 1] * v + centre_y
            x0, y0 = math.floor(sx), math.floor(sy)
            fx, fy = sx - x0, sy - y0
            top = (1 - fx) * pixel(y0, x0) + fx * pixel(y0, x0 + 1)
            bottom = (1 - fx) * pixel(y0 + 1, x0) + fx * pixel(y0 + 1, x0 + 1)
            out[y, x] = (1 - fy) * top + fy * bottom
    return out


def test_keeps_shape_and_returns_float32():
    images = faces(5)
    out = augment_batch(images, AugmentConfig(erase=0.5), np.random.default_rng(0))
    assert out.shape == (5, 48, 48) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255  # bilinear mixing stays in the input range
    assert not np.array_equal(out, images)


def test_zero_strength_is_identity():
    images = faces(6)
    for fill in ("nearest", "constant"):
        out = augment_batch(images, only(fill=fill), np.random.default_rng(1))
        np.testing.assert_array_equal(out, images.astype(np.float32))


def test_flip_twice_is_identity():
    images = faces(4).astype(np.float32)
    flip = only(flip=1.0)
    once = augment_batch(images, flip, np.random.default_rng(2))
    np.testing.assert_array_equal(once, images[:, :, ::-1])
    np.testing.assert_array_equal(augment_batch(once, flip, np.random.default_rng(3)), images)


def test_flip_probability_is_respected():
    images = faces(1).repeat(400, axis=0)
    out = augment_batch(images, only(flip=0.5), np.random.default_rng(4))
    flipped = np.all(out == images[:, :, ::-1], axis=(1, 2))
    assert 150 < flipped.sum() < 250


def test_each_image_stays_in_its_row():
    """Labels stay valid: every augmented face is closest to its own original."""
    images = smooth_faces(16)
    out = augment_batch(images, AugmentConfig(flip=0.0, erase=0.5), np.random.default_rng(5))
    distances = ((out[:, None] - images[None]) ** 2).sum(axis=(2, 3))  # (N, N)
    assert np.array_equal(distances.argmin(axis=1), np.arange(16))


def test_rotation_by_90_degrees_is_rot90():
    images = faces(3).astype(np.float32)
    inverse = inverse_matrices(np.ones(3), np.full(3, np.pi / 2), np.zeros(3), np.ones(3))
    out = warp_affine(images, inverse, np.zeros((3, 2), np.float32))
    # out[y, x] = in[47 - x, y]: clockwise on screen (y points down)
    np.testing.assert_allclose(out, np.rot90(images, k=-1, axes=(1, 2)), atol=1e-3)


@pytest.mark.parametrize("fill, fill_value", [("nearest", 0.0), ("constant", 7.0)])
def test_integer_shift_is_pad_and_crop(fill, fill_value):
    image = faces(1)[0].astype(np.float32)
    inverse = inverse_matrices(np.ones(1), np.zeros(1), np.zeros(1), np.ones(1))
    out = warp_affine(image[None], inverse, np.array([[3.0, -2.0]], np.float32), fill, fill_value)[0]
    pad = dict(mode="edge") if fill == "nearest" else dict(mode="constant", constant_values=fill_value)
    padded = np.pad(image, 4, **pad)
    np.testing.assert_array_equal(out, padded[4 + 2:4 + 2 + 48, 4 - 3:4 - 3 + 48])  # content moves right 3, up 2


@pytest.mark.parametrize("fill", ["nearest", "constant"])
def test_vectorized_warp_matches_reference(fill):
    images = faces(3, seed=6).astype(np.float32)
    config = AugmentConfig(flip=0.5, shift=5, rotation=25, zoom=0.2, shear=10)
    inverse, shift = random_affine(3, config, np.random.default_rng(7))
    out = warp_affine(images, inverse, shift, fill, 3.0)
    for n in range(3):
        expected = reference_warp(images[n], inverse[n].astype(np.float64), shift[n], fill, 3.0)
        np.testing.assert_allclose(out[n], expected, atol=1e-2)


def test_random_erasing_blanks_one_rectangle_with_the_mean():
    images = faces(6).astype(np.float32)
    out = augment_batch(images, only(erase=1.0, erase_area=(0.05, 0.1)), np.random.default_rng(8))
    for before, after in zip(images, out):
        changed = np.argwhere(after != before)
        top, left = changed.min(axis=0)
        bottom, right = changed.max(axis=0) + 1
        box = after[top:bottom, left:right]
        np.testing.assert_allclose(box, before.mean(), rtol=1e-5)
        np.testing.assert_array_equal(np.delete(after, np.s_[top:bottom], 0), np.delete(before, np.s_[top:bottom], 0))
        assert 0.03 * 2304 <= box.size <= 0.12 * 2304


def test_same_seed_same_batch():
    images = faces(4)
    config = AugmentConfig(erase=0.5)
    first = augment_batch(images, config, np.random.default_rng(9))
    np.testing.assert_array_equal(first, augment_batch(images, config, np.random.default_rng(9)))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError):
        AugmentConfig(flip=1.5)
    with pytest.raises(ValueError):
        AugmentConfig(rotation=-1)
    with pytest.raises(ValueError):
        AugmentConfig(fill="wrap")


def test_augmentation_grid_png(tmp_path):
    path = tmp_path / "grid.png"
    save_augmentation_grid(faces(3), AugmentConfig(), str(path), np.random.default_rng(0), copies=4)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
