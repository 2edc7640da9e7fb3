"""kernels.heap: with freed memory kept, a second large array reuses the first one's pages."""
import os
import subprocess
import sys

import pytest

CHILD = """
import resource, sys
import numpy
from tinycnn.kernels import heap
kept = heap.keep_freed_memory() if sys.argv[1] == "keep" else False
def fill_64_mb():
    a = numpy.empty(16 * 2 ** 20, numpy.float32)
    a.fill(1.0)
    return float(a[-1])
fill_64_mb()                                   # a first array, freed on return
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
fill_64_mb()                                   # the same size again
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults_of_second_array(mode):
    env = dict(os.environ)
    env.pop("MALLOC_MMAP_MAX_", None)
    result = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                            env=env, check=True)
    kept, faults = result.stdout.split()
    return kept == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_a_freed_large_array_is_reused_without_page_faults():
    kept, faults_kept = page_faults_of_second_array("keep")
    if not kept:
        pytest.skip("this Linux's C library has no mallopt (not glibc)")
    _, faults_default = page_faults_of_second_array("default")
    assert faults_default >= 16          # 64 MB: at least one fault per 4 MB, even with huge pages
    assert faults_kept < faults_default / 4


def test_numba_kernel_set_keeps_freed_memory_unless_the_user_set_malloc():
    """Importing the numba kernel set calls keep_freed_memory, except under MALLOC_MMAP_MAX_."""
    pytest.importorskip("numba")
    probe = ("from unittest import mock\nfrom tinycnn.kernels import heap\n"
             "with mock.patch.object(heap, 'keep_freed_memory') as keep:\n"
             "    import tinycnn.kernels.numba_cpu\n"
             "print(keep.called)")
    for value, expected in ((None, "True"), ("65536", "False")):
        env = dict(os.environ)
        env.pop("MALLOC_MMAP_MAX_", None)
        if value:
            env["MALLOC_MMAP_MAX_"] = value
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             env=env, check=True).stdout.split()[-1]
        assert out == expected
