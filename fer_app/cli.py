"""The error boundary every fer_app command shares.

A failure the user can cause and fix (a missing or damaged file, a bad option, a
backend that cannot run here, a folder that cannot be written) is raised where it
happens as one of the EXPECTED errors. :func:`error_boundary` turns it into one line
on stderr, ``error: <the thing>: <what is wrong>``, and exit code 2 for a bad option
(:class:`UsageError`, as argparse does for the options it checks itself) or 1 for
the rest. Any other exception is a bug: it goes through with its traceback.

    @error_boundary
    def main(argv: list[str] | None = None) -> int:
        ...
"""
from __future__ import annotations

import functools
import os
import sys
from typing import Callable

from tinycnn.backend import BackendError
from tinycnn.distributed import DistributedError
from tinycnn.serialization import SerializationError


class UserError(Exception):
    """A failure the user can fix: a bad input file or model, an unusable folder. Exit code 1."""
    exit_code = 1


class UsageError(UserError):
    """An option value that argparse cannot check itself (--epochs 0). Exit code 2."""
    exit_code = 2


# ModelFileError, DataError, TrainError... are UserErrors; BackendError and DistributedError
# say a backend or MPI cannot run here; OSError covers files that cannot be read or written
# (missing, permission denied, a file where a folder should be).
EXPECTED = (UserError, BackendError, DistributedError, SerializationError, OSError)


def error_boundary(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """``main`` with its EXPECTED errors turned into one line on stderr and an exit code."""
    @functools.wraps(main)
    def guarded(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except EXPECTED as error:
            print(f"error: {one_line(error)}", file=sys.stderr)
            return getattr(error, "exit_code", 1)
    return guarded


def one_line(error: BaseException) -> str:
    """The error's message on one line; an OSError as "path: reason"."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error)
    return " ".join(text.split())


def writable_folder(folder: str, option: str) -> str:
    """Make ``folder`` (for ``option``'s output) if needed and check it can be written,
    before any work is done; a UserError naming the option otherwise."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise UserError(f"{option} {folder}: cannot create this folder ({error.strerror}); "
                        f"choose another") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"{option} {folder}: this folder is not writable; choose another")
    return folder


def writable_file(path: str, option: str) -> str:
    """Check, before any work is done, that the file ``path`` (for ``option``'s output)
    can be written: its folder is made if needed and must be writable, and ``path`` must
    not be a folder. A UserError naming the option otherwise."""
    if os.path.isdir(path):
        raise UserError(f"{option} {path}: is a folder; give a file name")
    writable_folder(os.path.dirname(os.path.abspath(path)), option)
    return path
