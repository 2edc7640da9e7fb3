"""``cached_njit``: ``numba.njit(cache=True)`` that still works where Numba cannot write its cache.

Numba keeps compiled machine code between runs in the first writable folder of:
``NUMBA_CACHE_DIR``, the ``__pycache__`` folder beside the source, the user's cache
folder (``~/.cache/numba``). For a user who can write none of them (a read-only
install and a read-only or missing home) ``njit(cache=True)`` itself raises
``RuntimeError: cannot cache function ...`` while the module is being imported.

``cached_njit`` catches that and tries, in turn:

1. a private cache folder ``<temp>/tinycnn-numba-<uid>``, used only if it is a real
   folder owned by this user that no one else can write (cached machine code is
   executed when loaded, so a folder someone else controls must not be trusted);
   Numba is pointed at it for the rest of the process (``NUMBA_CACHE_DIR``);
2. no cache: the kernel compiles again in every process (a few seconds), with one
   warning saying so.

    @cached_njit(parallel=True)
    def relu(x, out): ...
"""
from __future__ import annotations

import os
import stat
import tempfile
import warnings

import numba
from numba.core import config


def cached_njit(**options):
    """Decorator: ``numba.njit(cache=True, **options)``, falling back as the module says."""
    def decorate(function):
        try:
            return numba.njit(cache=True, **options)(function)
        except RuntimeError:  # "cannot cache function": no writable cache folder
            pass
        if use_private_cache_folder():
            try:
                return numba.njit(cache=True, **options)(function)
            except RuntimeError:
                pass
        warnings.warn("Numba has no writable cache folder: tinycnn's kernels compile again in "
                      "every run (set NUMBA_CACHE_DIR to a writable folder to keep them)",
                      RuntimeWarning)  # one message from one place: shown once
        return numba.njit(cache=False, **options)(function)
    return decorate


def use_private_cache_folder() -> bool:
    """Point Numba's cache at :func:`private_cache_folder`; False if there is none."""
    folder = private_cache_folder(tempfile.gettempdir())
    if folder is None:
        return False
    os.environ["NUMBA_CACHE_DIR"] = folder  # read again by Numba's config reloads
    config.CACHE_DIR = folder
    return True


def private_cache_folder(parent: str) -> str | None:
    """``parent/tinycnn-numba-<uid>``, made with mode 0700 if missing; None unless it is
    a folder (not a link) owned by this user and writable by no one else."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # Windows: no owner to check
        return None
    folder = os.path.join(parent, f"tinycnn-numba-{getuid()}")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        info = os.lstat(folder)
    except OSError:
        return None
    private = (stat.S_ISDIR(info.st_mode) and info.st_uid == getuid()
               and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
    return folder if private else None
