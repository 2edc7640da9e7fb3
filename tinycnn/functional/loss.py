"""Softmax cross-entropy, fused and numerically stable."""
from __future__ import annotations

from ..backend import of
from ..tensor import Function, Tensor


class SoftmaxCrossEntropy(Function):
    """Mean over the batch of  -sum_k t[n, k] * w[k]-weighted log softmax(x)[n, k].

    x (N, K) logits, t (N, K) target distribution (one-hot, soft or smoothed),
    class weights w (K,) or None. With weights the mean is divided by the total
    weight of the targets (as PyTorch does for integer labels).
    loss = sum_n c[n] * (logsumexp(x[n]) - sum_k t[n,k] x[n,k]) / sum_n c[n],
    where c[n] = sum_k t[n,k] w[k] (1 without class weights);
    dx[n] = c[n] * (softmax(x[n]) - t[n]) / sum c.
    """

    def __init__(self, targets, class_weight=None):
        self.targets, self.class_weight = targets, class_weight

    def forward(self, x):
        xp = of(x).xp
        t = self.targets
        shifted = x - x.max(axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        if self.class_weight is None:
            c = xp.ones(x.shape[0], dtype=x.dtype)
        else:
            c = t @ self.class_weight
        self.c, self.total = c, c.sum()
        self.p = xp.exp(log_p)
        per_row = -(t * log_p).sum(axis=1)
        return xp.asarray((c * per_row).sum() / self.total)

    def backward(self, dy):
        return dy * (self.c / self.total)[:, None] * (self.p - self.targets)


def softmax_cross_entropy(logits: Tensor, labels, label_smoothing: float = 0.0,
                          class_weight=None) -> Tensor:
    """Mean cross-entropy between softmax(logits) and the labels.

    logits (N, K); labels are integer class indices (N,) or a distribution
    (N, K) (one-hot or soft). ``label_smoothing`` e mixes the targets with the
    uniform distribution: t = (1 - e) t + e / K. ``class_weight`` (K,) weights
    each class.
    """
    xp = of(logits.data).xp
    n, k = logits.shape
    labels = labels.data if isinstance(labels, Tensor) else labels
    labels = xp.asarray(labels)
    if labels.ndim == 1:
        if labels.shape[0] != n:
            raise ValueError(f"{labels.shape[0]} labels for {n} rows of logits")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"integer labels expected, got dtype {labels.dtype}")
        if n and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise ValueError(f"labels must be in [0, {k - 1}]")
        targets = xp.zeros((n, k), dtype=logits.dtype)
        targets[xp.arange(n), labels] = 1
    elif labels.shape == (n, k):
        targets = labels.astype(logits.dtype)
    else:
        raise ValueError(f"labels must have shape ({n},) or ({n}, {k}), got {tuple(labels.shape)}")
    if label_smoothing:
        targets = (1 - label_smoothing) * targets + label_smoothing / k
    weight = None if class_weight is None else xp.asarray(class_weight, dtype=logits.dtype)
    return SoftmaxCrossEntropy(targets, weight)(logits)
