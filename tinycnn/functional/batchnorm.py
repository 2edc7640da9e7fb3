"""Batch normalization over (N, C) features or (N, C, H, W) images."""
from __future__ import annotations

from ..backend import of
from ..tensor import Function, Tensor


class BatchNormTrain(Function):
    """Training mode: normalize each channel with the statistics of this batch.

    x (N, C) or (N, C, H, W), gamma and beta (C,) -> y of x's shape.
    y = gamma * (x - mean) / sqrt(var + eps) + beta, mean and var over N (and H, W).
    The batch mean and biased variance are kept in ``self.mean``/``self.var``.
    """

    def __init__(self, eps):
        self.eps = eps

    def forward(self, x, gamma, beta):
        self.x_shape = x.shape
        x3 = x.reshape(x.shape[0], x.shape[1], -1)                     # (N, C, L)
        y3, self.mean, self.var, self.saved = of(x, gamma, beta).kernels.batch_norm_forward(
            x3, gamma, beta, self.eps)
        self.gamma = gamma
        return y3.reshape(x.shape)

    def backward(self, dy):
        dy3 = dy.reshape(dy.shape[0], dy.shape[1], -1)
        dx3, dgamma, dbeta = of(dy).kernels.batch_norm_backward(dy3, self.gamma, self.saved)
        return dx3.reshape(self.x_shape), dgamma, dbeta


def batch_norm(x: Tensor, running_mean, running_var, weight: Tensor, bias: Tensor,
               training: bool, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch norm as PyTorch does it.

    Training: batch statistics, and the running statistics (arrays, updated in
    place) move towards them: running = (1 - momentum) * running + momentum * batch,
    with the *unbiased* batch variance. Evaluation: the running statistics.
    """
    if x.ndim not in (2, 4) or x.shape[1] != weight.shape[0]:
        raise ValueError(f"batch_norm expects (N, {weight.shape[0]}) or (N, {weight.shape[0]}, H, W), got {x.shape}")
    if training:
        count = x.size // x.shape[1]                   # values per channel
        if count < 2:
            raise ValueError(f"batch_norm in training needs more than one value per channel, "
                             f"got input of shape {x.shape}")
        function = BatchNormTrain(eps)
        y = function(x, weight, bias)
        unbiased = function.var * (count / (count - 1))
        running_mean *= 1 - momentum
        running_mean += momentum * function.mean
        running_var *= 1 - momentum
        running_var += momentum * unbiased
        return y
    shape = (1, -1) + (1,) * (x.ndim - 2)          # (1, C) or (1, C, 1, 1): broadcasts over x
    xp = of(running_var).xp
    mean = Tensor._wrap(running_mean.reshape(shape))
    inv_std = Tensor._wrap((1.0 / xp.sqrt(running_var + eps)).reshape(shape))
    return (x - mean) * (weight.reshape(shape) * inv_std) + bias.reshape(shape)
