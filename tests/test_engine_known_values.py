"""Forward (and some backward) values computed by hand or by plain loops, on every CPU backend."""
from __future__ import annotations

import math
import statistics

import numpy
import pytest

import tinycnn
from tinycnn import Tensor, nn
from tinycnn import functional as F


def tensor(values, requires_grad=False):
    return Tensor(numpy.array(values, dtype=numpy.float64), requires_grad=requires_grad)


# --- convolution -------------------------------------------------------------------
X3 = [[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]]   # (1, 1, 3, 3)
W2 = [[[[1, 2], [3, 4]]]]                    # (1, 1, 2, 2)


def test_tiny_conv_by_hand(float64, backend_name):
    x, w, b = tensor(X3, True), tensor(W2, True), tensor([1.0], True)
    y = F.conv2d(x, w, b)
    # y[0, 0] = 1*1 + 2*2 + 4*3 + 5*4 + 1 = 38, and so on for each 2x2 window
    numpy.testing.assert_array_equal(y.numpy(), [[[[38, 48], [68, 78]]]])
    y.sum().backward()
    numpy.testing.assert_array_equal(w.grad, [[[[12, 16], [24, 28]]]])  # window sums of x
    numpy.testing.assert_array_equal(b.grad, [4])                        # four outputs
    numpy.testing.assert_array_equal(x.grad, [[[[1, 3, 2], [4, 10, 6], [3, 7, 4]]]])


def test_tiny_conv_padding_1_stride_2_by_hand(float64, backend_name):
    y = F.conv2d(tensor(X3), tensor(W2), stride=2, padding=1)
    # windows start at rows/cols -1 and 1 of the zero-padded image
    numpy.testing.assert_array_equal(y.numpy(), [[[[4, 18], [36, 77]]]])


def conv2d_loops(x, w, b, stride, pad):
    """The definition, one multiply-add at a time."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    padded = numpy.zeros((n, c, h + 2 * pad[0], wd + 2 * pad[1]))
    padded[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + wd] = x
    oh = (h + 2 * pad[0] - kh) // stride[0] + 1
    ow = (wd + 2 * pad[1] - kw) // stride[1] + 1
    y = numpy.zeros((n, o, oh, ow))
    for i in range(n):
        for k in range(o):
            for r in range(oh):
                for s in range(ow):
                    window = padded[i, :, r * stride[0]:r * stride[0] + kh,
                                    s * stride[1]:s * stride[1] + kw]
                    y[i, k, r, s] = (window * w[k]).sum() + b[k]
    return y


@pytest.mark.parametrize("x_shape, w_shape, stride, pad", [
    ((2, 3, 5, 5), (4, 3, 3, 3), (1, 1), (0, 0)),
    ((1, 2, 7, 6), (3, 2, 3, 3), (2, 2), (1, 1)),
    ((2, 1, 6, 9), (2, 1, 2, 4), (2, 3), (2, 1)),
])
def test_conv2d_matches_the_loop_definition(float64, backend_name, x_shape, w_shape, stride, pad):
    rng = numpy.random.default_rng(1)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    y = F.conv2d(Tensor(x), Tensor(w), Tensor(b), stride, pad)
    numpy.testing.assert_allclose(y.numpy(), conv2d_loops(x, w, b, stride, pad), rtol=1e-12, atol=1e-12)


def test_conv2d_same_keeps_the_size_and_rejects_even_kernels(float64):
    x = Tensor(numpy.ones((1, 2, 5, 7)))
    assert F.conv2d(x, Tensor(numpy.ones((3, 2, 3, 5))), padding="same").shape == (1, 3, 5, 7)
    with pytest.raises(ValueError, match="same"):
        F.conv2d(x, Tensor(numpy.ones((3, 2, 2, 2))), padding="same")
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        F.conv2d(x, Tensor(numpy.ones((1, 3, 3, 3))))


# --- max pooling -------------------------------------------------------------------
P4 = [[[[1, 3, 2, 0], [5, 4, 7, 6], [8, 9, 1, 2], [0, 3, 4, 5]]]]   # (1, 1, 4, 4)


def test_max_pool_2x2_by_hand(float64, backend_name):
    x = tensor(P4, True)
    y = F.max_pool2d(x, 2)
    numpy.testing.assert_array_equal(y.numpy(), [[[[5, 7], [9, 5]]]])
    y.backward(numpy.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = numpy.zeros((1, 1, 4, 4))
    expected[0, 0, 1, 0], expected[0, 0, 1, 2], expected[0, 0, 2, 1], expected[0, 0, 3, 3] = 1, 2, 3, 4
    numpy.testing.assert_array_equal(x.grad, expected)


def test_max_pool_overlapping_windows_by_hand(float64, backend_name):
    x = tensor(P4, True)
    y = F.max_pool2d(x, 3, stride=2, padding=1)   # windows at rows/cols -1..1 and 1..3
    numpy.testing.assert_array_equal(y.numpy(), [[[[5, 7], [9, 9]]]])
    y.sum().backward()
    expected = numpy.zeros((1, 1, 4, 4))
    expected[0, 0, 1, 0], expected[0, 0, 1, 2], expected[0, 0, 2, 1] = 1, 1, 2   # 9 wins twice
    numpy.testing.assert_array_equal(x.grad, expected)


def test_max_pool_padding_never_wins(float64, backend_name):
    x = Tensor(-1.0 - numpy.arange(16.0).reshape(1, 1, 4, 4))
    y = F.max_pool2d(x, 3, stride=2, padding=1)
    numpy.testing.assert_array_equal(y.numpy(), [[[[-1, -2], [-5, -6]]]])   # never 0


def test_max_pool_non_square_matches_a_loop(float64, backend_name):
    x = numpy.random.default_rng(2).standard_normal((2, 3, 7, 8))
    y = F.max_pool2d(Tensor(x), (3, 2), stride=(2, 3)).numpy()
    expected = numpy.array([[[[x[n, c, 2 * r:2 * r + 3, 3 * s:3 * s + 2].max() for s in range(3)]
                              for r in range(3)] for c in range(3)] for n in range(2)])
    numpy.testing.assert_array_equal(y, expected)


# --- batch normalization -------------------------------------------------------------
def test_batch_norm_1d_train_and_eval_by_hand(float64, backend_name):
    columns = [[1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0]]     # two features, four samples
    x = Tensor(numpy.array(columns).T)                         # (4, 2)
    layer = nn.BatchNorm1d(2, eps=1e-5, momentum=0.1)
    layer.weight.data[:] = [2.0, 1.0]
    layer.bias.data[:] = [0.0, 1.0]
    y = layer(x).numpy()
    for c, (gamma, beta) in enumerate([(2.0, 0.0), (1.0, 1.0)]):
        mean, var = statistics.fmean(columns[c]), statistics.pvariance(columns[c])
        expected = [gamma * (v - mean) / math.sqrt(var + 1e-5) + beta for v in columns[c]]
        numpy.testing.assert_allclose(y[:, c], expected, rtol=1e-12)
        # running stats: 0.9 * initial + 0.1 * batch, with the unbiased variance
        assert layer.running_mean[c] == pytest.approx(0.9 * 0.0 + 0.1 * mean, rel=1e-12)
        assert layer.running_var[c] == pytest.approx(
            0.9 * 1.0 + 0.1 * statistics.variance(columns[c]), rel=1e-12)

    layer.eval()
    y_eval = layer(x).numpy()
    for c, (gamma, beta) in enumerate([(2.0, 0.0), (1.0, 1.0)]):
        mean, var = float(layer.running_mean[c]), float(layer.running_var[c])
        expected = [gamma * (v - mean) / math.sqrt(var + 1e-5) + beta for v in columns[c]]
        numpy.testing.assert_allclose(y_eval[:, c], expected, rtol=1e-12)


def test_batch_norm_2d_statistics_over_batch_and_pixels(float64, backend_name):
    x = Tensor(numpy.arange(1.0, 17.0).reshape(2, 2, 2, 2))   # channel 0: 1-4, 9-12
    layer = nn.BatchNorm2d(2, momentum=0.5)
    y = layer(x).numpy()
    channel0 = [1.0, 2.0, 3.0, 4.0, 9.0, 10.0, 11.0, 12.0]
    mean, var = statistics.fmean(channel0), statistics.pvariance(channel0)
    numpy.testing.assert_allclose(y[:, 0].reshape(-1), [(v - mean) / math.sqrt(var + 1e-5) for v in channel0],
                                  rtol=1e-12)
    assert layer.running_mean[0] == pytest.approx(0.5 * mean)
    assert layer.running_var[0] == pytest.approx(0.5 + 0.5 * statistics.variance(channel0))
    layer(x)   # a second step moves them again
    assert layer.running_mean[0] == pytest.approx(0.75 * mean)
    assert layer.running_var[0] == pytest.approx(0.25 + 0.75 * statistics.variance(channel0))
    layer.eval()
    before = layer.running_mean.copy()
    layer(x)
    numpy.testing.assert_array_equal(layer.running_mean, before)   # eval does not update


def test_batch_norm_rejects_the_wrong_rank(float64):
    with pytest.raises(ValueError, match="4-D"):
        nn.BatchNorm2d(3)(Tensor(numpy.ones((2, 3))))


# --- dropout, softmax, cross-entropy ---------------------------------------------------
def test_dropout_scales_kept_values_and_is_identity_in_eval(backend_name):
    tinycnn.manual_seed(0)
    x = Tensor(numpy.ones((200, 50)))
    y = F.dropout(x, p=0.3, training=True).numpy()
    numpy.testing.assert_allclose(numpy.unique(y), [0.0, 1 / 0.7], rtol=1e-6)   # float32
    assert abs((y == 0).mean() - 0.3) < 0.02
    assert F.dropout(x, p=0.3, training=False) is x


def test_softmax_and_log_softmax_by_hand(float64, backend_name):
    row = [1.0, 2.0, 3.0]
    total = sum(math.exp(v) for v in row)
    numpy.testing.assert_allclose(F.softmax(tensor([row])).numpy()[0],
                                  [math.exp(v) / total for v in row], rtol=1e-12)
    numpy.testing.assert_allclose(F.log_softmax(tensor([row])).numpy()[0],
                                  [v - math.log(total) for v in row], rtol=1e-12)
    huge = F.log_softmax(tensor([[1000.0, 0.0]])).numpy()   # stable: no overflow
    numpy.testing.assert_allclose(huge, [[0.0, -1000.0]], atol=1e-12)


def cross_entropy_by_hand(logits, labels, weights, smoothing):
    """PyTorch's cross_entropy with integer labels, 'mean' reduction, one term at a time."""
    k = len(weights)
    total, denominator = 0.0, 0.0
    for row, label in zip(logits, labels):
        log_sum = math.log(sum(math.exp(v) for v in row))
        for j in range(k):
            target = (1 - smoothing) * (j == label) + smoothing / k
            total += weights[j] * target * (log_sum - row[j])
        denominator += weights[label]
    return total / denominator


def test_cross_entropy_values_by_hand(float64, backend_name):
    logits = [[1.0, 2.0, 0.5], [0.1, -1.0, 2.0], [3.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    labels = [1, 2, 0, 1]
    weights = [0.5, 2.0, 1.0]
    x = tensor(logits)
    for class_weight, smoothing in [(None, 0.0), (weights, 0.0), (None, 0.1), (weights, 0.2)]:
        loss = F.softmax_cross_entropy(x, numpy.array(labels), smoothing, class_weight).item()
        expected = cross_entropy_by_hand(logits, labels, class_weight or [1.0] * 3, smoothing)
        assert loss == pytest.approx(expected, rel=1e-12)
    one_hot = numpy.eye(3)[labels]
    assert F.softmax_cross_entropy(x, one_hot).item() == pytest.approx(
        cross_entropy_by_hand(logits, labels, [1.0] * 3, 0.0), rel=1e-12)


def test_cross_entropy_soft_labels_divide_by_batch_size(float64):
    # PyTorch's probability targets: mean over rows of -sum_k w[k] t[n, k] log p[n, k]
    logits, targets, weights = [[0.0, 1.0], [2.0, 0.0]], [[0.3, 0.7], [1.0, 0.0]], [2.0, 0.5]
    expected = 0.0
    for row, target in zip(logits, targets):
        log_sum = math.log(sum(math.exp(v) for v in row))
        expected += sum(w * t * (log_sum - v) for w, t, v in zip(weights, target, row)) / 2
    loss = F.softmax_cross_entropy(tensor(logits), numpy.array(targets), class_weight=weights)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_is_stable_and_checks_labels(float64):
    loss = F.softmax_cross_entropy(tensor([[1000.0, -1000.0]]), numpy.array([0]))
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.softmax_cross_entropy(tensor([[0.0, 1.0]]), numpy.array([2]))
    with pytest.raises(ValueError, match="integer"):
        F.softmax_cross_entropy(tensor([[0.0, 1.0]]), numpy.array([0.5]))
    with pytest.raises(ValueError, match="shape"):
        F.softmax_cross_entropy(tensor([[0.0, 1.0]]), numpy.ones((1, 3)))
