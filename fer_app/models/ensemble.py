"""Ensemble: several trained networks that decide together by averaging their
class probabilities.

    ensemble = Ensemble([net_a, net_b])   # each net: (N, 1, 48, 48) -> logits (N, K)
    out = ensemble(x)                     # (N, K) = log( mean_i softmax(net_i(x)) )

Networks trained from different seeds or recipes make partly independent mistakes,
so the mean of their probabilities is right more often than either one. The output
is the log of that mean, so ``softmax(out)`` is the mean probability itself and the
code that reads logits (argmax, softmax, TTA) works unchanged. Each member's
weights are registered under ``member<i>.``, so a state_dict holds them all.
"""
from __future__ import annotations

from tinycnn import Tensor, nn
from tinycnn import functional as F


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
