"""Ensemble: several trained networks that decide together by averaging their
class probabilities.

    ensemble = Ensemble([net_a, net_b])   # each net: (N, 1, 48, 48) -> logits (N, K)
    out = ensemble(x)                     # (N, K) = log( mean_i softmax(net_i(x)) )

Networks trained from different seeds or recipes make partly independent mistakes,
so the mean of their probabilities is right more often than either one. The output
is the log of that mean, so ``softmax(out)`` is the mean probability itself and the
code that reads logits (argmax, softmax, TTA) works unchanged. Each member's
weights are registered under ``member<i>.``, so a state_dict holds them all.
``ensemble.fuse()`` is the inference-only form: every member fused (``tinycnn.fuse``).
"""
from __future__ import annotations

import tinycnn
from tinycnn import Tensor, backend, nn
from tinycnn import functional as F
from tinycnn.threads import inference_threads


class Ensemble(nn.Module):
    """The mean of the members' class probabilities, as log-probabilities (N, K)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)
        for i, member in enumerate(self.members):
            setattr(self, f"member{i}", member)

    def forward(self, x: Tensor) -> Tensor:
        probabilities = [F.softmax(member(x), axis=1) for member in self.members]  # each (N, K)
        mean = probabilities[0]
        for p in probabilities[1:]:
            mean = mean + p
        return (mean / len(self.members)).log()

    def fuse(self) -> "FusedEnsemble":
        """The inference-only form: each member fused with ``tinycnn.fuse``."""
        return FusedEnsemble([tinycnn.fuse(member) for member in self.members])


class FusedEnsemble:
    """:class:`Ensemble`'s forward on arrays: x (N, 1, 48, 48) -> log of the mean probability (N, K)."""

    def __init__(self, members: list):
        self.members = members

    def __call__(self, x):
        with inference_threads():       # set once for all members
            mean = sum(_softmax(member(x)) for member in self.members) / len(self.members)
        return backend.of(mean).xp.log(mean)


def _softmax(logits):
    """Row-wise softmax of logits (N, K), on the logits' backend."""
    xp = backend.of(logits).xp
    exp = xp.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)
