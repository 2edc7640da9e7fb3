"""Kernel sets: the heavy array code behind each operation, one module per backend.

Every kernel set has the same functions with the same signatures (see
``reference.py``, the plain and readable one, which also runs on CuPy arrays).
The functional ops in ``tinycnn.functional`` call them through
``tinycnn.backend.of(x).kernels``.
"""
