"""benchmarks/blas_env.py: the timing benchmarks unset OpenBLAS's kernel overrides for their
own process only, say so, and keep them with --keep-blas-env. No time is asserted."""
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import blas_env

REPO = Path(__file__).resolve().parents[1]
SMALL_RUN = ["--archs", "seed002", "--batches", "1", "--reps", "1", "--threads", "1", "--backend", "numpy"]


def run_fused_inference(*options: str) -> str:
    """The output of ``python -m benchmarks.fused_inference`` on a tiny run, started with
    OPENBLAS_CORETYPE=Haswell and OPENBLAS_L2_SIZE=512 in its environment."""
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512"}
    done = subprocess.run([sys.executable, "-m", "benchmarks.fused_inference", *SMALL_RUN, *options],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_benchmark_run_unsets_the_overrides_and_says_so():
    assert "unset for this run: OPENBLAS_CORETYPE=Haswell, OPENBLAS_L2_SIZE=512" in run_fused_inference()


def test_keep_blas_env_keeps_them_and_openblas_takes_the_named_kernel():
    out = run_fused_inference(blas_env.KEEP_OPTION)
    assert "kept: OPENBLAS_CORETYPE=Haswell, OPENBLAS_L2_SIZE=512" in out
    if "openblas" in out and platform.machine() == "x86_64":
        assert "(Haswell kernels)" in out


def test_unsetting_after_numpy_loaded_is_refused(monkeypatch):
    """NumPy is loaded in this test process: OpenBLAS has read the variables already."""
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    with pytest.raises(RuntimeError, match="before NumPy"):
        blas_env.unset_overrides([])
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell"
    assert blas_env.unset_overrides([blas_env.KEEP_OPTION]) == {}


def test_the_description_names_what_is_set():
    assert blas_env.unset_description({"OPENBLAS_CORETYPE": "Haswell"}) == \
        "unset for this run: OPENBLAS_CORETYPE=Haswell"
    assert blas_env.unset_description({}).startswith(("kept: ", "neither OPENBLAS_CORETYPE"))
