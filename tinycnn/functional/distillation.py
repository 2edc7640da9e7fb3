"""Knowledge distillation: the KL divergence between softened teacher and student outputs.

Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network". A
student network learns from a teacher's class probabilities softened by a temperature
T > 1, which shows how the teacher ranks the wrong classes as well as the right one.
"""
from __future__ import annotations

from ..backend import of
from ..tensor import Function, Tensor


def softened_log_probs(x, temperature: float):
    """log softmax(x / T) row-wise, computed stably: x (N, K) array -> (N, K) array."""
    xp = of(x).xp
    scaled = x / temperature
    shifted = scaled - scaled.max(axis=1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))


class SoftTargetKL(Function):
    """Mean KL divergence from the teacher's softened distribution to the student's.

    z (N, K) student logits, t (N, K) teacher logits (or log-probabilities: softmax
    ignores a constant per row), T the temperature:
        p = softmax(t / T)   q = softmax(z / T)
        loss = sum_n sum_k p[n, k] (log p[n, k] - log q[n, k]) / N
        dz[n, k] = (q[n, k] - p[n, k]) / (N T)
    The loss is zero exactly when q = p, and it has no gradient for the teacher.
    """

    def __init__(self, teacher_logits, temperature: float):
        self.log_p = softened_log_probs(teacher_logits, temperature)  # (N, K)
        self.temperature = temperature

    def forward(self, z):
        xp = of(z).xp
        log_q = softened_log_probs(z, self.temperature)                # (N, K)
        self.p, self.q = xp.exp(self.log_p), xp.exp(log_q)
        return xp.asarray((self.p * (self.log_p - log_q)).sum() / len(z))

    def backward(self, dy):
        return dy * (self.q - self.p) / (len(self.q) * self.temperature)


def soft_target_kl(logits: Tensor, teacher_logits, temperature: float = 1.0) -> Tensor:
    """KL(softmax(teacher_logits / T) || softmax(logits / T)), averaged over the N rows.

    logits (N, K) Tensor of the student; teacher_logits (N, K) array (a Tensor's data is
    used, never its graph: the teacher gets no gradient).
    """
    teacher = teacher_logits.data if isinstance(teacher_logits, Tensor) else teacher_logits
    xp = of(logits.data).xp
    teacher = xp.asarray(teacher, dtype=logits.dtype)
    if teacher.shape != logits.shape:
        raise ValueError(f"teacher outputs {tuple(teacher.shape)} do not match the student's "
                         f"{tuple(logits.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return SoftTargetKL(teacher, temperature)(logits)
