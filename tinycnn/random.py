"""One seeded random generator for the whole library, so that a run is reproducible.

``manual_seed(s)`` reseeds it (and CuPy's, on the GPU backend). Parameter
initialization draws on the host and copies to the device, so a seed gives
the same initial weights on every backend.
"""
from __future__ import annotations

import numpy

from . import backend

_rng = numpy.random.default_rng(0)
_seed = 0


def manual_seed(seed: int) -> None:
    """Reseed the library's random generators."""
    global _rng, _seed
    _seed = int(seed)
    _rng = numpy.random.default_rng(_seed)
    for name in ("cupy",):
        if name in backend._LOADED:
            backend._LOADED[name].xp.random.seed(_seed)


def rng() -> numpy.random.Generator:
    """The host generator (used for initialization and data shuffling)."""
    return _rng


def uniform(shape, like):
    """Uniform [0, 1) numbers of ``shape`` on the backend that owns array ``like``."""
    xp = backend.of(like).xp
    if xp is numpy:
        return _rng.random(shape, dtype=numpy.float32)
    return xp.random.random_sample(shape, dtype=numpy.float32)
