"""One seeded random generator for the whole library, so that a run is reproducible.

``manual_seed(s)`` reseeds it, and a device generator (CuPy's) at its next draw. Parameter
initialization draws on the host and copies to the device, so a seed gives
the same initial weights on every backend.
"""
from __future__ import annotations

import numpy

from . import backend

_rng = numpy.random.default_rng(0)
_seed = 0
_seeded_devices: dict = {}   # device backend name -> its array module, seeded with _seed


def manual_seed(seed: int) -> None:
    """Reseed the library's random generators (a device's when it next draws)."""
    global _rng, _seed
    _seed = int(seed)
    _rng = numpy.random.default_rng(_seed)
    _seeded_devices.clear()


def rng() -> numpy.random.Generator:
    """The host generator (used for initialization and data shuffling)."""
    return _rng


def uniform(shape, like):
    """Uniform [0, 1) numbers of ``shape`` on the backend that owns array ``like``."""
    owner = backend.of(like)
    if owner.xp is numpy:
        return _rng.random(shape, dtype=numpy.float32)
    if _seeded_devices.get(owner.name) is not owner.xp:   # first draw since manual_seed
        owner.xp.random.seed(_seed)
        _seeded_devices[owner.name] = owner.xp
    return owner.xp.random.random_sample(shape, dtype=numpy.float32)
