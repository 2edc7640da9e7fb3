"""Softmax cross-entropy, fused and numerically stable."""
from __future__ import annotations

from ..backend import of
from ..tensor import Function, Tensor


class SoftmaxCrossEntropy(Function):
    """Class-weighted cross-entropy between softmax(x) and target distributions.

    x (N, K) logits, t (N, K) targets (one-hot, soft or smoothed rows), class
    weights w (K,) (all 1 when not given), D a number (see below):
        loss = sum_n sum_k w[k] t[n, k] (-log softmax(x)[n, k]) / D
        dx[n, j] = (c[n] softmax(x)[n, j] - w[j] t[n, j]) / D,  c[n] = sum_k w[k] t[n, k].
    log softmax is computed as x - max - log(sum(exp(x - max))), so it never overflows.
    """

    def __init__(self, targets, class_weight, denominator):
        self.targets, self.class_weight, self.denominator = targets, class_weight, denominator

    def forward(self, x):
        xp = of(x).xp
        shifted = x - x.max(axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))   # (N, K)
        self.p = xp.exp(log_p)                                                   # (N, K)
        self.weighted_targets = (self.targets if self.class_weight is None
                                 else self.targets * self.class_weight)        # (N, K) w[k] t[n, k]
        return xp.asarray(-(self.weighted_targets * log_p).sum() / self.denominator)

    def backward(self, dy):
        c = self.weighted_targets.sum(axis=1, keepdims=True)                    # (N, 1)
        return dy * (c * self.p - self.weighted_targets) / self.denominator


def softmax_cross_entropy(logits: Tensor, labels, label_smoothing: float = 0.0,
                          class_weight=None) -> Tensor:
    """Mean cross-entropy between softmax(logits) and the labels, as PyTorch's ``cross_entropy``.

    logits (N, K); labels are integer class indices (N,) or a distribution
    (N, K) (one-hot or soft). ``label_smoothing`` e mixes the targets with the
    uniform distribution: t = (1 - e) t + e / K. ``class_weight`` w (K,) weights
    each class. The "mean" divides the summed loss by D = sum_n w[label_n] for
    integer labels (N without weights) and by D = N for distribution labels.
    """
    xp = of(logits.data).xp
    n, k = logits.shape
    labels = labels.data if isinstance(labels, Tensor) else labels
    labels = xp.asarray(labels)
    weight = None if class_weight is None else xp.asarray(class_weight, dtype=logits.dtype)
    if weight is not None and weight.shape != (k,):
        raise ValueError(f"class_weight must have shape ({k},), got {tuple(weight.shape)}")
    if labels.ndim == 1:
        if labels.shape[0] != n:
            raise ValueError(f"{labels.shape[0]} labels for {n} rows of logits")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"integer labels expected, got dtype {labels.dtype}")
        if n and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise ValueError(f"labels must be in [0, {k - 1}]")
        targets = xp.zeros((n, k), dtype=logits.dtype)
        targets[xp.arange(n), labels] = 1
        denominator = n if weight is None else weight[labels].sum()
    elif labels.shape == (n, k):
        targets = labels.astype(logits.dtype)
        denominator = n
    else:
        raise ValueError(f"labels must have shape ({n},) or ({n}, {k}), got {tuple(labels.shape)}")
    if label_smoothing:
        targets = (1 - label_smoothing) * targets + label_smoothing / k
    return SoftmaxCrossEntropy(targets, weight, denominator)(logits)
