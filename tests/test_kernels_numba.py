"""The Numba kernel set agrees with the reference kernels (forward and every gradient),
and its convolution paths (Winograd with tile sizes 2, 3, 4, direct and im2col) pass a
numerical gradient check in float64."""
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from tests.conftest import using_backend  # noqa: E402
from tests.gradcheck import check_gradients  # noqa: E402
import tinycnn  # noqa: E402
from tinycnn import nn  # noqa: E402
from tinycnn import functional as F  # noqa: E402
from tinycnn.kernels import numba_cpu, numba_inference, reference, winograd  # noqa: E402
from tinycnn.kernels.blas_threads import blas_threads, set_blas_threads  # noqa: E402
from tinycnn.tensor import Tensor  # noqa: E402

TOLERANCE = {np.float32: 1e-4, np.float64: 1e-10}   # relative to the largest reference value
DTYPES = [np.float32, np.float64]

# x shape, w shape, stride, pad, path the Numba kernels should take
CONV_CASES = [
    ((4, 4, 2, 4), (5, 4, 3, 3), (1, 1), (1, 1), "winograd m=2"),  # F(2x2, 3x3), 'same'
    ((4, 4, 8, 8), (5, 4, 3, 3), (1, 1), (1, 1), "winograd m=4"),  # F(4x4, 3x3), 'same'
    ((4, 4, 6, 6), (3, 4, 3, 3), (1, 1), (1, 1), "winograd m=3"),  # F(3x3, 3x3), 'same'
    ((2, 3, 7, 7), (4, 3, 5, 5), (1, 1), (0, 0), "im2col"),        # 3 input channels: no Winograd
    ((4, 4, 7, 7), (4, 4, 5, 5), (1, 1), (0, 0), "winograd m=3"),  # F(3x3, 5x5)
    ((4, 6, 5, 7), (3, 6, 3, 3), (1, 1), (0, 0), "winograd m=3"),  # odd sizes, no padding
    ((4, 4, 6, 6), (3, 4, 5, 5), (1, 1), (0, 0), "winograd m=2"),  # F(2x2, 5x5)
    ((4, 4, 9, 7), (3, 4, 5, 5), (1, 1), (2, 2), "winograd m=4"),  # F(4x4, 5x5), 'same'
    ((4, 5, 6, 6), (2, 5, 5, 5), (1, 1), (1, 0), "winograd m=4"),  # uneven padding
    ((2, 1, 7, 9), (4, 1, 3, 3), (1, 1), (1, 1), "direct"),        # one input channel
    ((3, 3, 6, 5), (2, 3, 3, 3), (1, 1), (2, 0), "direct"),        # 27 taps, padding 2 and 0
    ((2, 1, 5, 6), (3, 1, 5, 5), (1, 1), (4, 1), "direct"),        # 5x5, padding up to 4
    ((2, 1, 4, 5), (2, 1, 3, 3), (1, 1), (3, 4), "direct"),        # padding beyond the kernel
    ((2, 3, 9, 9), (4, 3, 3, 3), (2, 2), (1, 1), "im2col"),        # stride 2
    ((2, 5, 6, 7), (4, 5, 1, 1), (1, 1), (0, 0), "direct"),        # 1x1 (5 taps)
    ((1, 4, 7, 6), (2, 4, 3, 5), (2, 1), (1, 2), "im2col"),        # non-square kernel and stride
    ((3, 4, 6, 6), (3, 4, 3, 3), (1, 1), (1, 1), "im2col"),        # fewer than 4 images
]


def path_taken(saved, w_shape, y_shape):
    """"im2col", or "winograd m=<tile size>"."""
    if saved[0] != "winograd":
        return saved[0]
    return f"winograd m={winograd.tile_size(w_shape[2], y_shape[2], y_shape[3])}"


def assert_close(actual, expected, dtype, tolerance=None):
    tolerance = TOLERANCE[dtype] if tolerance is None else tolerance
    scale = max(float(np.abs(expected).max()), 1e-30)
    error = float(np.abs(np.asarray(actual, np.float64) - expected).max())
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert error <= tolerance * scale, f"max error {error:.3g} vs scale {scale:.3g}"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad, path", CONV_CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_matches_reference(rng, dtype, x_shape, w_shape, stride, pad, path, with_bias):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if with_bias else None
    y, saved = numba_cpu.conv2d_forward(x, w, b, stride, pad)
    y_ref, saved_ref = reference.conv2d_forward(x, w, b, stride, pad)
    assert path_taken(saved, w.shape, y.shape) == path
    assert_close(y, y_ref, dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = numba_cpu.conv2d_backward(dy, x, w, saved, stride, pad)
    grads_ref = reference.conv2d_backward(dy, x, w, saved_ref, stride, pad)
    for grad, grad_ref in zip(grads, grads_ref):
        assert_close(grad, grad_ref, dtype)


@pytest.mark.parametrize("count", [1, 2])
def test_winograd_products_on_one_or_two_threads_match_reference(rng, count):
    """The stacked Winograd products (parallel_matmul) split over two threads or run on one."""
    x, w, b = rng.standard_normal((5, 6, 9, 7)), rng.standard_normal((4, 6, 5, 5)), rng.standard_normal(4)
    tinycnn.threads.set_threads(count)
    try:
        y, saved = numba_cpu.conv2d_forward(x, w, b, (1, 1), (2, 2))
        dy = rng.standard_normal(y.shape)
        grads = numba_cpu.conv2d_backward(dy, x, w, saved, (1, 1), (2, 2))
    finally:
        tinycnn.threads.set_threads(None)
    y_ref, saved_ref = reference.conv2d_forward(x, w, b, (1, 1), (2, 2))
    assert saved[0] == "winograd"
    assert_close(y, y_ref, np.float64)
    for grad, grad_ref in zip(grads, reference.conv2d_backward(dy, x, w, saved_ref, (1, 1), (2, 2))):
        assert_close(grad, grad_ref, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad, path", CONV_CASES)
@pytest.mark.parametrize("relu, pool", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("images", [1, 3])
def test_inference_conv_matches_reference(rng, dtype, x_shape, w_shape, stride, pad, path, relu,
                                          pool, images):
    """numba_inference.conv2d_inference (channels-last Winograd wherever winograd.fits, at
    any batch size; im2col elsewhere) against the reference conv + bias + ReLU + 2x2 pool."""
    x = rng.standard_normal((images,) + x_shape[1:]).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    expected = reference.conv2d_inference(x, reference.prepare_conv2d(w, b, stride, pad), relu, pool)
    prepared = numba_inference.prepare_conv2d(w, b, stride, pad)
    assert_close(numba_inference.conv2d_inference(x, prepared, relu, pool), expected, dtype)


@pytest.mark.parametrize("stride, pad", [((1, 1), (1, 1)), ((2, 2), (1, 1))])
def test_inference_conv_output_is_channels_last_and_feeds_the_next_layer(rng, stride, pad):
    """The output is an (N, O, OH, OW) view of (N, OH, OW, O) memory; a second layer reads
    it (no copy on the Winograd path, a strided view on im2col's) and agrees with two
    reference layers, as does the same input given NCHW-contiguous."""
    x = rng.standard_normal((2, 5, 10, 10))
    w1, b1 = rng.standard_normal((6, 5, 3, 3)), rng.standard_normal(6)
    w2, b2 = rng.standard_normal((4, 6, 3, 3)), rng.standard_normal(4)
    first = numba_inference.conv2d_inference(x, numba_inference.prepare_conv2d(w1, b1, (1, 1), (1, 1)),
                                             True, False)
    assert first.shape == (2, 6, 10, 10) and first.transpose(0, 2, 3, 1).flags.c_contiguous
    second = numba_inference.prepare_conv2d(w2, b2, stride, pad)
    expected_first = reference.conv2d_inference(x, reference.prepare_conv2d(w1, b1, (1, 1), (1, 1)),
                                                True, False)
    expected = reference.conv2d_inference(expected_first, reference.prepare_conv2d(w2, b2, stride, pad),
                                          False, True)
    for given in (first, np.ascontiguousarray(first)):
        assert_close(numba_inference.conv2d_inference(given, second, False, True), expected, np.float64)


@pytest.mark.parametrize("w_shape, stride, pad", [((4, 5, 1, 1), (1, 1), (0, 0)),    # pointwise
                                                 ((4, 5, 3, 3), (2, 2), (1, 1))])   # im2col
def test_inference_chunks_of_one_image_give_the_same_outputs(rng, monkeypatch, w_shape, stride, pad):
    """The 1x1 and im2col paths split the batch into chunks under CHUNK_BYTES: with one image
    per chunk every output is still the reference's."""
    monkeypatch.setattr(numba_inference, "CHUNK_BYTES", 1)
    x = rng.standard_normal((3, 5, 6, 7))
    w, b = rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    expected = reference.conv2d_inference(x, reference.prepare_conv2d(w, b, stride, pad), True, True)
    prepared = numba_inference.prepare_conv2d(w, b, stride, pad)
    assert_close(numba_inference.conv2d_inference(x, prepared, True, True), expected, np.float64)


def test_inference_winograd_chunks_and_tasks_cover_every_tile(rng, monkeypatch):
    """Images split into several chunks (a tiny chunk budget), each chunk's tiles into
    parallel tasks: every output of a 5x5 F(4x4) layer with cropped edge tiles is right."""
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)           # one image per chunk
    x = rng.standard_normal((3, 4, 9, 7))
    w, b = rng.standard_normal((3, 4, 5, 5)), rng.standard_normal(3)
    expected = reference.conv2d_inference(x, reference.prepare_conv2d(w, b, (1, 1), (2, 2)), True, False)
    prepared = numba_inference.prepare_conv2d(w, b, (1, 1), (2, 2))
    assert winograd.fits(w.shape, (1, 1), (2, 2)) and winograd.plan(x.shape, w.shape, (2, 2))[-1] == 1
    assert_close(numba_inference.conv2d_inference(x, prepared, True, False), expected, np.float64)


@pytest.mark.parametrize("x_shape, w_shape, stride, pad, path",
                         [CONV_CASES[i] for i in (1, 6, 8, 10, 12, 13)])   # winograd, direct, im2col
def test_conv2d_backward_without_dx_gives_the_same_dw_and_db(rng, x_shape, w_shape, stride, pad, path):
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    for kernels in (numba_cpu, reference):
        y, saved = kernels.conv2d_forward(x, w, None, stride, pad)
        dy = rng.standard_normal(y.shape)
        dx, dw, db = kernels.conv2d_backward(dy, x, w, saved, stride, pad)
        none, dw_only, db_only = kernels.conv2d_backward(dy, x, w, saved, stride, pad, need_dx=False)
        assert none is None and dx is not None
        np.testing.assert_allclose(dw_only, dw, rtol=1e-12)
        np.testing.assert_allclose(db_only, db, rtol=1e-12)


def test_input_images_get_no_gradient_and_the_weights_the_same_one(rng, backend_name):
    """The first convolution skips dx when its input does not require grad (the images)."""
    tinycnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    x = rng.standard_normal((4, 1, 6, 6)).astype(np.float32)
    grads = []
    for requires_grad in (True, False):
        images = Tensor(x, requires_grad=requires_grad)
        model.zero_grad()
        model(images).sum().backward()
        grads.append([p.grad.copy() for p in model.parameters()])
        assert (images.grad is not None) == requires_grad
    for with_dx, without_dx in zip(*grads):
        np.testing.assert_allclose(without_dx, with_dx, rtol=1e-6)


@pytest.mark.parametrize("x_shape, w_shape, stride, pad, path",
                         [CONV_CASES[i] for i in (0, 1, 2, 4, 6, 10, 12, 13)])
def test_conv2d_numerical_gradient(rng, x_shape, w_shape, stride, pad, path):
    """Central differences in float64 through F.conv2d on the numba backend (every path)."""
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    y, saved = numba_cpu.conv2d_forward(x, w, b, stride, pad)
    assert path_taken(saved, w.shape, y.shape) == path
    with using_backend("numba"):
        errors = check_gradients(lambda *t: F.conv2d(*t, stride=stride, padding=pad), [x, w, b])
    assert max(errors) < 1e-6, errors


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, kernel, stride, pad", [
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0)),
    ((2, 3, 7, 9), (2, 2), (2, 2), (0, 0)),      # odd sizes drop the last row/column
    ((2, 2, 7, 8), (3, 3), (2, 2), (1, 1)),      # overlapping windows with padding
    ((1, 2, 6, 7), (2, 3), (1, 2), (1, 1)),      # non-square
])
def test_max_pool2d_matches_reference(rng, dtype, x_shape, kernel, stride, pad):
    x = rng.standard_normal(x_shape).astype(dtype)
    y, saved = numba_cpu.max_pool2d_forward(x, kernel, stride, pad)
    y_ref, saved_ref = reference.max_pool2d_forward(x, kernel, stride, pad)
    assert_close(y, y_ref, dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = numba_cpu.max_pool2d_backward(dy, x.shape, saved, kernel, stride, pad)
    assert_close(dx, reference.max_pool2d_backward(dy, x.shape, saved_ref, kernel, stride, pad), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, offset", [((6, 4, 1), 0.0), ((3, 5, 10), 0.0), ((4, 3, 9), 100.0)])
def test_batch_norm_matches_reference(rng, dtype, shape, offset):
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    gamma = rng.standard_normal(shape[1]).astype(dtype)
    beta = rng.standard_normal(shape[1]).astype(dtype)
    y, mean, var, saved = numba_cpu.batch_norm_forward(x, gamma, beta, 1e-5)
    y_ref, mean_ref, var_ref, saved_ref = reference.batch_norm_forward(x, gamma, beta, 1e-5)
    for actual, expected in ((y, y_ref), (mean, mean_ref), (var, var_ref)):
        assert_close(actual, expected, dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    grads = numba_cpu.batch_norm_backward(dy, gamma, saved)
    for grad, grad_ref in zip(grads, reference.batch_norm_backward(dy, gamma, saved_ref)):
        assert_close(grad, grad_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_matches_reference(rng, dtype):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    y = numba_cpu.relu_forward(x)
    assert_close(y, reference.relu_forward(x), dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert_close(numba_cpu.relu_backward(dy, y), reference.relu_backward(dy, y), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay, decoupled", [(0.0, False), (0.1, False), (0.1, True)])
def test_adam_step_matches_reference(rng, dtype, weight_decay, decoupled):
    state = {name: rng.standard_normal((4, 3)).astype(dtype) for name in ("p", "m")}
    state["v"] = rng.random((4, 3)).astype(dtype)
    fast = {name: array.copy() for name, array in state.items()}
    for step in (1, 2, 3):
        g = rng.standard_normal((4, 3)).astype(dtype)
        args = (1e-2, 0.9, 0.999, 1e-8, step, weight_decay, decoupled)
        reference.adam_step(state["p"], g, state["m"], state["v"], *args)
        numba_cpu.adam_step(fast["p"], g, fast["m"], fast["v"], *args)
    for name in state:
        assert_close(fast[name], state[name], dtype)


def small_network():
    # no bias in front of batch norm: its exact gradient is 0, so only rounding noise would be compared
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding="same", bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 5, padding="same", bias=False), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 5, bias=False), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))


@pytest.mark.parametrize("dtype", DTYPES)
def test_network_gradients_agree_across_backends(rng, dtype):
    """A whole forward/backward through the layers gives the same loss and gradients."""
    images = rng.standard_normal((4, 1, 8, 8))
    tinycnn.manual_seed(0)  # the same weights whatever ran before
    state = small_network().to(dtype).state_dict()
    results = {}
    for name in ("numpy", "numba"):
        with using_backend(name):
            model = small_network().to(dtype)
            model.load_state_dict(state)
            loss = (model(Tensor(images, dtype=dtype)) ** 2).mean()
            loss.backward()
            results[name] = [loss.data] + [p.grad for p in model.parameters()]
    # float32 rounding grows through three batch norms (each divides by a batch std),
    # so the whole network gets ten times the per-kernel tolerance
    tolerance = {np.float32: 1e-3, np.float64: TOLERANCE[np.float64]}[dtype]
    for fast, slow in zip(results["numba"], results["numpy"]):
        assert_close(np.asarray(fast), np.asarray(slow), dtype, tolerance)


def test_blas_threads_can_be_read_and_set():
    before = blas_threads()
    if before is None:
        pytest.skip("NumPy's BLAS is not a loaded OpenBLAS here")
    try:
        assert set_blas_threads(2)
        assert blas_threads() == 2
        assert set_blas_threads(1)
        assert blas_threads() == 1
    finally:
        set_blas_threads(before)
    with pytest.raises(ValueError):
        set_blas_threads(0)


def test_numba_kernel_set_leaves_openblas_on_one_thread():
    """Checked in a fresh process: this one's environment depends on what other tests imported."""
    if blas_threads() is None:
        pytest.skip("NumPy's BLAS is not a loaded OpenBLAS here")
    code = ("import tinycnn.kernels.numba_cpu\n"
            "from tinycnn.kernels.blas_threads import blas_threads\n"
            "print(blas_threads())")
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    unset = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert unset.stdout.strip() == "1", unset.stderr
    kept = subprocess.run([sys.executable, "-c", code], env={**env, "OPENBLAS_NUM_THREADS": "2"},
                          capture_output=True, text=True)
    assert kept.stdout.strip() == "2", kept.stderr


def test_tile_size_counts_weight_reads_only_when_asked():
    """Training (no weight reads) keeps the fewest multiplications; one face on a 6x6 map
    takes smaller tiles (fewer Winograd-domain weights to read), 64 faces do not."""
    assert winograd.tile_size(3, 6, 6) == 3 and winograd.tile_size(3, 12, 12) == 4
    assert winograd.tile_size(3, 6, 6, images=1, weight_reads=10) == 2
    assert winograd.tile_size(3, 12, 12, images=1, weight_reads=10) == 3
    assert winograd.tile_size(3, 6, 6, images=64, weight_reads=10) == 3
    assert winograd.plan((64, 8, 6, 6), (8, 8, 3, 3), (1, 1))[0] == winograd.tile_size(3, 6, 6)


def test_prepared_conv_weights_have_no_subnormals_and_the_same_outputs(rng):
    """Subnormal weights (slow to multiply) become 0 in the prepared forms; outputs agree."""
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    w[0, 0] = np.finfo(np.float32).tiny / 4                 # nine subnormal weights
    b = rng.standard_normal(3).astype(np.float32)
    prepared = numba_inference.prepare_conv2d(w, b, (1, 1), (1, 1))
    y = numba_inference.conv2d_inference(x, prepared, True, False)
    arrays = [prepared.w] + [u for u, _, _ in prepared.winograd.values()]
    assert prepared.winograd and all(not ((a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)).any()
                                     for a in arrays)
    expected = reference.conv2d_inference(x, reference.prepare_conv2d(w, b, (1, 1), (1, 1)), True, False)
    assert_close(y, expected, np.float32)


def test_inference_winograd_scratch_follows_the_tile_size(rng, monkeypatch):
    """One prepared layer called with the same input shape under two weight-read costs
    (WEIGHT_READ, which sets the tile size) keeps separate scratch arrays for each tile
    size: both answers are the reference's."""
    x = rng.standard_normal((1, 8, 24, 24))
    w, b = rng.standard_normal((6, 8, 3, 3)), rng.standard_normal(6)
    expected = reference.conv2d_inference(x, reference.prepare_conv2d(w, b, (1, 1), (1, 1)), True, False)
    prepared = numba_inference.prepare_conv2d(w, b, (1, 1), (1, 1))
    tile_sizes = []
    for weight_read in (0, 10 ** 4):
        monkeypatch.setattr(numba_inference, "WEIGHT_READ", weight_read)
        tile_sizes.append(winograd.plan(x.shape, w.shape, (1, 1), weight_read)[0])
        assert_close(numba_inference.conv2d_inference(x, prepared, True, False), expected, np.float64)
    assert tile_sizes[0] != tile_sizes[1]
