"""Data-parallel training (tinycnn.distributed, fer_app.train under mpiexec).

Two MPI ranks must take exactly the steps one process takes on the concatenated global
batch; fer_app.train under ``mpiexec -n 2`` writes one run's files once and resumes; a rank
that dies or raises ends the job; and the NCCL path (CuPy arrays) works on the stand-in
(tests/fake_cupy.py) with a stand-in communicator. The MPI tests need mpi4py and mpiexec
(``pip install -e ".[mpi]"``, which CI installs) and skip with the reason without them.
"""
from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import tinycnn
from fer_app import train
from tests import distributed_worker as worker
from tests.fake_cupy import DeviceArray, make_fake_cupy
from tests.train_samples import write_fer_csv
from tinycnn import backend, distributed
from tinycnn import functional as F
from tinycnn.backend import Backend
from tinycnn.kernels import cupy_gpu

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=REPO)
FAST = ["--arch", "seed002", "--classes", "7", "--batch-size", "16", "--backend", "numpy",
        "--augment", "light"]


def find_mpiexec() -> str | None:
    """mpiexec beside this Python (the mpich wheel puts it in the venv), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")


def mpi_missing() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install -e '.[mpi]')"
    return None if find_mpiexec() else "no mpiexec found (pip install -e '.[mpi]')"


needs_mpi = pytest.mark.skipif(mpi_missing() is not None, reason=str(mpi_missing()))


def mpiexec(ranks: int, *command: str) -> list[str]:
    """The launch command; Open MPI refuses root and more ranks than cores unless told."""
    launcher = find_mpiexec()
    version = subprocess.run([launcher, "--version"], capture_output=True, text=True).stdout
    extra = ["--allow-run-as-root", "--oversubscribe"] if "Open MPI" in version else []
    return [launcher, *extra, "-n", str(ranks), sys.executable, *command]


def run(command: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


# --- two ranks take the steps of one process on the whole batch --------------------------
@pytest.fixture(scope="module")
def rank_states(tmp_path_factory):
    """Every case of tests/distributed_worker.py trained on 2 ranks: [rank 0's, rank 1's]."""
    if mpi_missing():
        pytest.skip(mpi_missing())
    out = tmp_path_factory.mktemp("ranks")
    done = run(mpiexec(2, "-m", "tests.distributed_worker", str(out)))
    assert done.returncode == 0, done.stdout + done.stderr
    return [dict(np.load(out / f"rank{rank}.npz")) for rank in (0, 1)]


@needs_mpi
@pytest.mark.parametrize("case", ["sgd", "adam", "sgd_unequal_shards"])
def test_two_ranks_equal_one_process_on_the_global_batch(rank_states, case):
    backend.use("numpy")
    single = worker.train(case, rank=0, size=1).state_dict()   # 1 rank: the whole batches
    start = worker.make_model(worker.CASES[case][0], seed=0).state_dict()
    for name, value in single.items():
        assert np.abs(value - start[name]).max() > 1e-3, f"{name} did not train"
        for rank, state in enumerate(rank_states):
            np.testing.assert_allclose(state[f"{case}/{name}"], value, rtol=0, atol=1e-10,
                                       err_msg=f"rank {rank}, {name}")


@needs_mpi
def test_ranks_with_batch_norm_keep_identical_parameters_and_running_statistics(rank_states):
    names = [key for key in rank_states[0] if key.startswith("adam_batchnorm/")]
    assert any(name.endswith("running_var") for name in names)
    start = worker.make_model("batchnorm", seed=0).state_dict()
    for name in names:
        np.testing.assert_array_equal(rank_states[0][name], rank_states[1][name], err_msg=name)
        if name != "adam_batchnorm/0.bias":   # batch norm right after it cancels its gradient
            assert np.abs(rank_states[0][name] - start[name.split("/", 1)[1]]).max() > 1e-4, name


# --- fer_app.train under mpiexec ----------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    return write_fer_csv(tmp_path_factory.mktemp("data") / "tiny.csv",
                         {"Training": 70, "PublicTest": 28})


@needs_mpi
def test_train_on_two_ranks_writes_one_runs_files_once_and_resumes(tiny_csv, tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    assert train.main(["--data", tiny_csv, "--epochs", "1", "--out", str(single), *FAST]) == 0
    done = run(mpiexec(2, "-m", "fer_app.train", "--data", tiny_csv, "--epochs", "1",
                       "--out", str(double), *FAST))
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(double)) == sorted(os.listdir(single))
    for line in ("data-parallel training on 2 ranks", "epoch   1 ", "best model"):
        assert done.stdout.count(line) == 1, (line, done.stdout)   # rank 1 is silent
    assert tinycnn.load(str(double / "last.npz"))[1]["epoch"] == 1

    resumed = run(mpiexec(2, "-m", "fer_app.train", "--resume", "--epochs", "2",
                          "--out", str(double)))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 1" in resumed.stdout and resumed.stdout.count("epoch   2 ") == 1
    history = (double / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2"]


@needs_mpi
def test_a_killed_rank_ends_the_job(tiny_csv, tmp_path):
    out = tmp_path / "run"
    env = dict(ENV, KILL_TEST_MARK=str(out))   # passed on to the ranks: finds them below
    launcher = subprocess.Popen(mpiexec(2, "-m", "fer_app.train", "--data", tiny_csv,
                                        "--epochs", "200", "--out", str(out), *FAST),
                                cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (out / "last.npz").exists():       # the ranks are training together
        assert launcher.poll() is None and time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    os.kill(rank_process(str(out), rank=1), signal.SIGKILL)
    killed_at = time.monotonic()
    output, _ = launcher.communicate(timeout=60)
    assert time.monotonic() - killed_at < 30
    assert launcher.returncode != 0
    assert "Killed" in output or "signal 9" in output.lower() or "KILLED" in output, output[-2000:]


def rank_process(mark: str, rank: int) -> int:
    """The pid of the MPI rank whose environment holds KILL_TEST_MARK=mark."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as file:
                environment = file.read().split(b"\0")
        except OSError:
            continue
        if f"KILL_TEST_MARK={mark}".encode() in environment and any(
                entry in environment for entry in (f"PMI_RANK={rank}".encode(),
                                                   f"OMPI_COMM_WORLD_RANK={rank}".encode())):
            return int(pid)
    raise AssertionError(f"no rank {rank} found")


@needs_mpi
def test_an_error_on_one_rank_ends_the_others_waiting_in_a_collective():
    program = ("from fer_app.training import distributed_train\n"
               "from tinycnn import distributed\n"
               "distributed_train.start(True)\n"
               "if distributed.rank() == 1:\n"
               "    raise RuntimeError('rank 1 broke')\n"
               "distributed.sum_numbers(1.0)\n")
    started = time.monotonic()
    done = run(mpiexec(2, "-c", program), timeout=60)
    assert time.monotonic() - started < 30
    assert done.returncode != 0
    assert "RuntimeError: rank 1 broke" in done.stderr


# --- the NCCL path on the CuPy stand-in ---------------------------------------------------
class FakeNcclGroup:
    """The ranks' side of a stand-in for cupyx.distributed's NCCL communicator: the ranks
    are threads of this process that meet at a barrier. Every call is recorded; only
    stand-in device arrays are taken (a host array raises TypeError), combined with device
    operations, so nothing reaches the host."""

    def __init__(self, size: int):
        self.barrier = threading.Barrier(size, timeout=10)
        self.inputs = [None] * size
        self.calls: list[tuple[str, int, tuple]] = []

    def meet(self, rank: int, what: str, array) -> None:
        if not isinstance(array, DeviceArray):
            raise TypeError(f"NCCL {what} got a {type(array).__name__}, not a device array")
        self.calls.append((what, rank, array.shape))
        self.inputs[rank] = array
        self.barrier.wait()


class FakeNccl:
    """One rank's communicator, with NCCLBackend's all_reduce and broadcast."""

    def __init__(self, group: FakeNcclGroup, rank: int):
        self.group, self.rank = group, rank

    def all_reduce(self, in_array, out_array, op: str = "sum") -> None:
        self.group.meet(self.rank, "all_reduce", in_array)
        total = self.group.inputs[0]
        for array in self.group.inputs[1:]:
            total = total + array
        self.group.barrier.wait()                # every rank has read every input
        assert op == "sum" and out_array is in_array
        out_array[...] = total

    def broadcast(self, array, root: int = 0) -> None:
        self.group.meet(self.rank, "broadcast", array)
        value = self.group.inputs[root].copy()
        self.group.barrier.wait()
        array[...] = value


class ThreadWorlds(threading.local):
    """Stands in for distributed._world: each thread (rank) sees its own rank and communicator."""


@pytest.fixture
def device(monkeypatch):
    """The CuPy stand-in registered as backend "cupy" for this test only."""
    fake = make_fake_cupy()
    monkeypatch.setattr(backend, "_LOADERS", dict(backend._LOADERS))
    monkeypatch.setattr(backend, "_LOADED", dict(backend._LOADED))
    monkeypatch.setattr(backend, "_current", backend._current)
    backend.register("cupy", lambda: Backend("cupy", fake, cupy_gpu))
    backend.get("cupy")
    return fake


def on_ranks(monkeypatch, work, size: int = 2) -> FakeNcclGroup:
    """Run work(rank) for every rank at once, each thread a rank on the stand-in NCCL."""
    group, worlds = FakeNcclGroup(size), ThreadWorlds()
    monkeypatch.setattr(distributed, "_world", worlds)

    def rank_main(rank: int) -> None:
        worlds.rank, worlds.size, worlds.host_comm = rank, size, None
        worlds.device_comm = FakeNccl(group, rank)
        work(rank)

    with concurrent.futures.ThreadPoolExecutor(size) as pool:
        for result in [pool.submit(rank_main, rank) for rank in range(size)]:
            result.result()
    return group


def test_nccl_path_on_the_cupy_standin(device, monkeypatch):
    host = [worker.make_model("batchnorm", seed=rank) for rank in (0, 1)]
    models = [worker.make_model("batchnorm", seed=rank).to("cupy") for rank in (0, 1)]
    group = on_ranks(monkeypatch, lambda rank: distributed.broadcast_parameters(models[rank]))
    assert [call[0] for call in group.calls] == ["broadcast"] * 2      # one flat buffer each
    for rank in (0, 1):
        host[rank].load_state_dict(host[0].state_dict())

    x, labels = worker.global_batch(step=0, rows=11)
    shards = np.array_split(np.arange(11), 2)
    for model in host + models:
        model.zero_grad()
    for rank, shard in enumerate(shards):
        for model, name in ((host[rank], "numpy"), (models[rank], "cupy")):
            backend.use(name)                                  # x goes to the model's backend
            logits = model(tinycnn.Tensor(x[shard], dtype=np.float64))
            F.softmax_cross_entropy(logits, labels[shard]).backward()
    expected = [sum(len(shard) / 11 * host[rank].parameters()[i].grad
                    for rank, shard in enumerate(shards)) for i in range(len(host[0].parameters()))]
    device.calls.clear()
    group = on_ranks(monkeypatch, lambda rank: distributed.allreduce_gradients(
        models[rank], share=len(shards[rank]) / 11))
    total = sum(p.size for p in models[0].parameters())
    assert group.calls == [("all_reduce", 0, (total,)), ("all_reduce", 1, (total,))] or \
        group.calls == [("all_reduce", 1, (total,)), ("all_reduce", 0, (total,))]
    assert "asnumpy" not in device.calls and "ndarray.get" not in device.calls
    for model in models:
        for parameter, want in zip(model.parameters(), expected):
            assert isinstance(parameter.grad, DeviceArray)
            np.testing.assert_allclose(device.asnumpy(parameter.grad), want, rtol=0, atol=1e-12)

    running = [np.mean([h.state_dict()[f"1.{key}"] for h in host], axis=0)
               for key in ("running_mean", "running_var")]
    assert np.abs(host[0].state_dict()["1.running_mean"] - running[0]).max() > 1e-6
    on_ranks(monkeypatch, lambda rank: distributed.average_buffers(models[rank]))
    for model in models:
        state = model.state_dict()
        np.testing.assert_allclose(state["1.running_mean"], running[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(state["1.running_var"], running[1], rtol=0, atol=1e-12)


def test_standin_communicator_refuses_host_arrays():
    with pytest.raises(TypeError, match="not a device array"):
        FakeNccl(FakeNcclGroup(1), 0).all_reduce(np.ones(3), None)


def test_a_world_of_one_changes_nothing():
    assert distributed.world_size() == 1 and distributed.rank() == 0
    model = worker.make_model("plain", seed=0)
    for parameter in model.parameters():
        parameter.grad = np.full_like(parameter.data, 2.0)
    distributed.broadcast_parameters(model)
    distributed.allreduce_gradients(model, share=0.5)
    distributed.average_buffers(model)
    assert all((p.grad == 2.0).all() for p in model.parameters())
    assert distributed.sum_numbers(3.0, 4) == (3.0, 4.0)


def test_benchmark_paper_model_is_the_ring_all_reduce_formula():
    from benchmarks.data_parallel import MACHINES, paper_table
    from fer_app.models import build_model
    rows = [line.split("|") for line in paper_table({"vgg_fer": 338.0}).splitlines()[2:]]
    gradient = 4 * build_model("vgg_fer").num_parameters()   # bytes of float32 gradients
    for row, images_per_machine in zip(rows, (lambda n: 64, lambda n: 64 / n)):
        for n, cell in zip(MACHINES, row[3:3 + len(MACHINES)]):
            seconds = images_per_machine(n) / 338.0             # one machine's compute per step
            assert float(cell) == pytest.approx(2 * (n - 1) / n * gradient * 8 / seconds / 1e9,
                                                abs=0.006)


def test_started_by_mpiexec_without_mpi4py_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PMI_SIZE", "2")                  # as MPICH's mpiexec sets it
    monkeypatch.setitem(sys.modules, "mpi4py", None)     # import mpi4py fails
    assert train.main(["--data", "missing.csv", "--out", str(tmp_path / "run")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: training on several processes needs mpi4py") and \
        error.count("\n") == 1
    assert distributed.world_size() == 1 and not (tmp_path / "run").exists()
