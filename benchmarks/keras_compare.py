"""tinycnn against Keras (TensorFlow) on the seed-004 network (and vgg_fer inference), on this machine.

    python -m benchmarks.keras_compare                    # tinycnn backends numba and numpy
    python -m benchmarks.keras_compare --backend numba --reps 9
    python -m benchmarks.keras_compare --quick            # smoke run: few repetitions
    python -m benchmarks.keras_compare --threads 1        # one thread per library, both sides
    python -m benchmarks.keras_compare --out benchmarks/results   # also write the result files

Everything below runs in one process, tinycnn and Keras samples taken in turn
(``benchmarks/timing.py``); each number is the median of ``--reps`` samples.
  0. correctness first: each layer gets the same weights on both sides, and its
     output and gradients must agree within float32 tolerance (so must the model, and
     each inference model of step 4 on both paths);
  1. the machine's float32 matmul GFLOP/s (NumPy's BLAS and TensorFlow's);
  2. forward and forward+backward of every seed-004 layer at batch 64;
  3. the seed-004 training step (softmax cross-entropy, Adam 1e-3, batch 64);
  4. inference: seed-004's batch-1 latency and batch-256 throughput; then, for seed004 and
     vgg_fer at batches 1 and 8, the fused model (``tinycnn.fuse``) and the eval-mode
     layers against the compiled Keras twin (a ``tf.function``), all in turns;
  5. peak resident memory of training, each side alone in a child process
     (``benchmarks/memory_child.py``), since one process cannot separate them.
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for this process (and its children) unless
``--keep-blas-env`` (``benchmarks/blas_env.py``); the header says which BLAS kernel ran.
Prints the header (machine, load, threads) and the table; with ``--out DIR`` also writes
DIR/keras_compare.{json,md,png} (the README's figures are benchmarks/results/). See
benchmarks/report.py for the row format (``ratio`` = Keras / tinycnn, above 1 when tinycnn
is better).
"""
from __future__ import annotations

import os
import sys

from benchmarks import blas_env

UNSET_BLAS = blas_env.unset_overrides(sys.argv) if __name__ == "__main__" else {}  # before NumPy loads

import argparse
import json
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy
from tqdm import tqdm

import tinycnn
from fer_app.models import build_model
from fer_app.models.summary import summarize
from tinycnn import Tensor, backend, nn, no_grad, optim
from tinycnn import functional as F
from tinycnn.kernels.blas_threads import blas_threads

from . import report
from .keras_twin import (keras, keras_forward, keras_forward_backward, keras_model_like,
                         keras_train_step, keras_twin_layer, tf, tinycnn_layout, to_nchw, to_nhwc)
from .layer_cases import (LayerCase, case_input, output_gradient, seed004_layer_cases,
                          tinycnn_forward, tinycnn_forward_backward)
from .model_steps import (BATCH, CLASSES, IMAGE, recording_thread_counts, tinycnn_fused_inference,
                          tinycnn_inference, tinycnn_train_step, training_batch,
                          with_batch_norm_statistics)
from .timing import interleaved_samples, median

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4            # max |tinycnn - Keras| / max |Keras|, per array
MATMUL_SIZE = 2048


# --- which tinycnn backends can run ------------------------------------------------------
def usable_backends(requested: list[str]) -> tuple[list[str], dict[str, str]]:
    """(backends that load and export every kernel, {backend: why not} for the others)."""
    from tinycnn.kernels import reference
    kernel_names = [name for name in dir(reference) if name.endswith(("_forward", "_backward", "_step"))]
    usable, missing = [], {}
    for name in requested:
        try:
            kernels = backend.get(name).kernels
        except backend.BackendError as error:
            missing[name] = str(error)
            continue
        absent = [kernel for kernel in kernel_names if not hasattr(kernels, kernel)]
        if absent:
            missing[name] = f"kernel set lacks {', '.join(absent)}"
        else:
            usable.append(name)
    return usable, missing


def on_backend(name: str, fn):
    """``fn`` run with tinycnn backend ``name`` active (backends share host arrays)."""
    def run():
        backend.use(name)
        return fn()
    return run


# --- correctness -------------------------------------------------------------------------
def relative_error(ours, theirs) -> float:
    """max |ours - theirs| / max |theirs|."""
    ours, theirs = numpy.asarray(ours, numpy.float64), numpy.asarray(theirs, numpy.float64)
    return float(numpy.abs(ours - theirs).max() / max(numpy.abs(theirs).max(), 1e-12))


@dataclass
class PreparedCase:
    case: LayerCase
    layer: nn.Module            # the tinycnn layer
    keras_layer: object         # its Keras twin with the same weights
    x: numpy.ndarray            # (N, C, H, W) or (N, F) input
    dy: numpy.ndarray           # gradient of the output, output's shape


def prepare_case(case: LayerCase) -> PreparedCase:
    layer = case.make_layer()
    x = case_input(case)
    return PreparedCase(case, layer, keras_twin_layer(layer, case.input_shape), x,
                        output_gradient(layer, x))


def check_case(prepared: PreparedCase, backend_name: str) -> dict[str, float]:
    """Relative error of y, dx and each parameter gradient, tinycnn vs Keras; asserts each."""
    backend.use(backend_name)
    ours = tinycnn_forward_backward(prepared.layer, prepared.x, prepared.dy)()
    theirs = [numpy.asarray(a) for a in keras_forward_backward(prepared.keras_layer, prepared.x, prepared.dy)()]
    theirs = [to_nchw(theirs[0]), to_nchw(theirs[1])] + tinycnn_layout(prepared.layer, theirs[2:])
    names = ["y", "dx"] + [f"d{name}" for name, _ in prepared.layer.named_parameters()]
    errors = {}
    for name, a, b in zip(names, ours, theirs):
        assert a.shape == b.shape, f"{prepared.case.name} {name}: shape {a.shape} vs Keras {b.shape}"
        errors[name] = relative_error(a, b)
        assert errors[name] < TOLERANCE, (f"{prepared.case.name} [{backend_name}] {name} differs from "
                                          f"Keras: relative error {errors[name]:.2e}")
    return errors


def check_model(model: nn.Module, keras_model, backend_name: str, image: tuple = IMAGE) -> float:
    """Softmax of tinycnn's logits vs the Keras model's output, evaluation mode, 8 images
    of shape ``image`` (C, H, W); asserts they agree."""
    backend.use(backend_name)
    x = numpy.random.default_rng(2).standard_normal((8, *image), dtype=numpy.float32)
    model.eval()
    with no_grad():
        ours = F.softmax(model(Tensor(x))).data
    error = relative_error(ours, numpy.asarray(keras_model(to_nhwc(x), training=False)))
    assert error < TOLERANCE, f"model [{backend_name}] differs from Keras: {error:.2e}"
    return error


# --- rows --------------------------------------------------------------------------------
def timing_row(name: str, kind: str, backend_name: str, ours: list[float], theirs: list[float],
               flops: float | None = None, images: int | None = None,
               matmul_gflops: float | None = None, **extra) -> dict:
    """A result row from the two sides' samples (seconds per call)."""
    row = {"name": name, "kind": kind, "backend": backend_name,
           "tinycnn_s": median(ours), "keras_s": median(theirs)}
    row["ratio"] = row["keras_s"] / row["tinycnn_s"]
    row.update(reps=len(ours), tinycnn_min_s=min(ours), keras_min_s=min(theirs))
    for side in ("tinycnn", "keras"):
        seconds = row[f"{side}_s"]
        if flops:
            row[f"{side}_gflops"] = flops / seconds / 1e9
            if matmul_gflops:
                row[f"{side}_matmul_share"] = row[f"{side}_gflops"] / matmul_gflops
        if images:
            row[f"{side}_images_per_s"] = images / seconds
    if flops:
        row["gflop_per_call"] = flops / 1e9
    row.update(extra)
    return row


# --- 1. matmul -------------------------------------------------------------------------------
def bench_matmul(reps: int, warmup: int) -> dict:
    """float32 (2048 x 2048) @ (2048 x 2048): NumPy (tinycnn's BLAS) vs TensorFlow."""
    rng = numpy.random.default_rng(3)
    a, b = (rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE), dtype=numpy.float32) for _ in range(2))
    a_tf, b_tf = tf.constant(a), tf.constant(b)
    samples = interleaved_samples({"numpy": lambda: a @ b, "tf": lambda: tf.linalg.matmul(a_tf, b_tf)},
                                  reps, warmup)
    return timing_row(f"matmul_f32_{MATMUL_SIZE}", "matmul", "numpy BLAS", samples["numpy"], samples["tf"],
                      flops=2 * MATMUL_SIZE ** 3, blas_threads=blas_threads())


# --- 2. layers -------------------------------------------------------------------------------
def bench_layer(prepared: PreparedCase, backends: list[str], reps: int, warmup: int,
                matmul_gflops: float) -> list[dict]:
    """Forward and forward+backward rows, one per backend, Keras sampled in the same turns."""
    p, rows = prepared, []
    modes = [("forward", p.case.forward_flops, tinycnn_forward(p.layer, p.x),
              keras_forward(p.keras_layer, p.x)),
             ("fwd+bwd", p.case.backward_flops, tinycnn_forward_backward(p.layer, p.x, p.dy),
              keras_forward_backward(p.keras_layer, p.x, p.dy))]
    for mode, flops, ours, theirs in modes:
        fns = {name: on_backend(name, ours) for name in backends}
        fns["keras"] = theirs
        samples = interleaved_samples(fns, reps, warmup)
        rows += [timing_row(f"{p.case.name}_{mode}", f"layer_{mode}", name, samples[name], samples["keras"],
                            flops=flops, matmul_gflops=matmul_gflops) for name in backends]
    return rows


# --- 3. training step --------------------------------------------------------------------
def build_pair(backend_name: str):
    """(tinycnn seed-004 model, its Keras twin with the same weights)."""
    backend.use(backend_name)
    model = build_model("seed004", CLASSES)
    return model, keras_model_like(model, IMAGE)


def products_on_one_thread(fn):
    """``fn`` with the Winograd products on one thread, as ``tinycnn.threads`` runs them
    when other processes keep the cores busy (the Numba kernels keep their threads)."""
    def run():
        tinycnn.threads.set_threads(1)
        try:
            return fn()
        finally:
            tinycnn.threads.set_threads(None)
    return run


def bench_train_step(models: dict, keras_model, reps: int, warmup: int,
                     flops_per_image: float, matmul_gflops: float) -> list[dict]:
    """One training step of seed-004 per tinycnn backend and for Keras, in turns; the
    numba backend twice: its Winograd products on the free cores (``tinycnn.threads``,
    the default) and on one thread."""
    x, labels = training_batch()
    fns = {}
    for name, model in models.items():
        model.train()
        fns[name] = on_backend(name, tinycnn_train_step(model, optim.Adam(model.parameters(), lr=1e-3), x, labels))
    counts = set()                         # thread counts tinycnn.threads gave the products
    if "numba" in models:
        fns["numba, 1 thread"] = products_on_one_thread(fns["numba"])
        fns["numba"] = recording_thread_counts(fns["numba"], counts)
    fns["keras"] = keras_train_step(keras_model, x, labels)
    samples = interleaved_samples(fns, reps, warmup)
    keras_api = f"model.train_on_batch (tf.function, jit_compile={keras_model.jit_compile})"
    rows = [timing_row("train_step_seed004", "train_step", name, samples[name], samples["keras"],
                       flops=3 * flops_per_image * BATCH, images=BATCH, matmul_gflops=matmul_gflops,
                       keras_api=keras_api,
                       product_threads=" / ".join(map(str, sorted(counts))) if name == "numba" else "")
            for name in models]
    if "numba" in models:
        rows.append(timing_row("train_step_seed004_products_1_thread", "train_step", "numba",
                               samples["numba, 1 thread"], samples["keras"],
                               flops=3 * flops_per_image * BATCH, images=BATCH,
                               matmul_gflops=matmul_gflops, keras_api=keras_api, product_threads=1))
    return rows


# --- 4. inference ------------------------------------------------------------------------
def bench_inference(models: dict, keras_model, reps: int, warmup: int,
                    flops_per_image: float, matmul_gflops: float) -> list[dict]:
    """Batch 1 against Keras `model(x)` (eager) and a tf.function of it; batch 256
    against `model.predict_on_batch`."""
    for model in models.values():
        model.eval()
    rng = numpy.random.default_rng(5)
    one, many = (rng.standard_normal((n, *IMAGE), dtype=numpy.float32) for n in (1, 256))
    one_nhwc, many_nhwc = to_nhwc(one), to_nhwc(many)
    compiled = tf.function(lambda inputs: keras_model(inputs, training=False))
    one_tf = tf.constant(one_nhwc)
    rows = []
    groups = [("infer_batch1", one, {"keras": lambda: keras_model(one_nhwc),
                                     "keras_compiled": lambda: compiled(one_tf)}),
              ("infer_batch256", many, {"keras": lambda: keras_model.predict_on_batch(many_nhwc)})]
    apis = {"infer_batch1": "model(x) eager", "infer_batch1_keras_compiled": "tf.function(model)(x)",
            "infer_batch256": "model.predict_on_batch(x)"}
    for name, x, theirs in groups:
        fns = {b: on_backend(b, tinycnn_inference(model, x)) for b, model in models.items()}
        samples = interleaved_samples({**fns, **theirs}, reps, warmup)
        for keras_name in theirs:
            row_name = name if keras_name == "keras" else f"{name}_{keras_name}"
            rows += [timing_row(row_name, "inference", b, samples[b], samples[keras_name],
                                flops=flops_per_image * len(x), images=len(x),
                                matmul_gflops=matmul_gflops, keras_api=apis[row_name])
                     for b in models]
    return rows


# --- 4b. inference: fused and layers against compiled Keras ----------------------------------
INFERENCE_ARCHS, INFERENCE_BATCHES = ("seed004", "vgg_fer"), (1, 8)
KERAS_COMPILED = "tf.function(model(x, training=False))"


@dataclass
class InferenceModels:
    """One architecture on both sides with the same weights; each maps
    (N, 1, 48, 48) images (NHWC for Keras) to logits (N, 7)."""
    arch: str
    model: nn.Sequential        # eval mode, random batch-norm statistics
    fused: dict                 # {tinycnn backend: tinycnn.fuse(model) made on it}
    keras_model: object         # Keras twin, no softmax
    flops_per_image: float


def inference_models(arch: str, backends: list[str]) -> InferenceModels:
    """``arch`` (seeded weights, random batch-norm statistics), fused on each backend, and
    its Keras twin."""
    backend.use(backends[0])
    tinycnn.manual_seed(0)
    model = with_batch_norm_statistics(build_model(arch, CLASSES))
    fused = {}
    for name in backends:
        backend.use(name)
        fused[name] = tinycnn.fuse(model)
    return InferenceModels(arch, model, fused, keras_model_like(model, IMAGE, softmax=False),
                           sum(row.flops for row in summarize(model, IMAGE)))


def check_inference(m: InferenceModels, backends: list[str]) -> dict[str, float]:
    """Relative error of the logits of 8 images, fused and layers on each backend vs Keras
    (eval mode); asserts each."""
    x = numpy.random.default_rng(2).standard_normal((8, *IMAGE), dtype=numpy.float32)
    theirs = numpy.asarray(m.keras_model(to_nhwc(x), training=False))
    errors = {}
    for name in backends:
        backend.use(name)
        for path, ours in {"fused": m.fused[name](x), "layers": tinycnn_inference(m.model, x)()}.items():
            key = f"{path} [{name}]"
            errors[key] = relative_error(ours, theirs)
            assert errors[key] < TOLERANCE, f"{m.arch} {key} differs from Keras: {errors[key]:.2e}"
    return errors


def bench_fused_inference(m: InferenceModels, batch: int, backends: list[str], reps: int,
                          warmup: int, matmul_gflops: float) -> list[dict]:
    """Rows infer_<arch>_batch<N>_fused and _layers per backend, each against the compiled
    Keras twin; every side sampled in the same turns."""
    x = numpy.random.default_rng(6).standard_normal((batch, *IMAGE), dtype=numpy.float32)
    x_tf = tf.constant(to_nhwc(x))
    compiled = tf.function(lambda inputs: m.keras_model(inputs, training=False))
    fused_threads: dict[str, set[int]] = {name: set() for name in backends}
    fns = {}
    for name in backends:
        fused = tinycnn_fused_inference(m.fused[name], x, fused_threads[name])
        fns[("fused", name)] = on_backend(name, fused)
        fns[("layers", name)] = on_backend(name, tinycnn_inference(m.model, x))
    fns["keras"] = lambda: compiled(x_tf)
    samples = interleaved_samples(fns, reps, warmup)
    threads = {("fused", name): "tinycnn.threads " + ", ".join(map(str, sorted(fused_threads[name])))
               for name in backends}
    threads.update({("layers", name): layer_threads(name) for name in backends})
    return [timing_row(f"infer_{m.arch}_batch{batch}_{path}", "inference", name, samples[(path, name)],
                       samples["keras"], flops=m.flops_per_image * batch, images=batch,
                       matmul_gflops=matmul_gflops, keras_api=KERAS_COMPILED,
                       tinycnn_threads=threads[(path, name)], keras_threads=tensorflow_threads())
            for path in ("fused", "layers") for name in backends]


def layer_threads(backend_name: str) -> str:
    """Threads of the eval-mode layers: BLAS, and the Numba kernels' on the numba backend."""
    if backend_name != "numba":
        return f"BLAS {blas_threads()}"
    import numba
    return f"Numba {numba.get_num_threads()}, BLAS {blas_threads()}"


def tensorflow_threads() -> str:
    """TensorFlow's intra- and inter-op thread pool sizes: set through ``tf.config``, else by
    TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS, else 'default' (TensorFlow's choice)."""
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return (f"intra-op {intra or os.environ.get('TF_NUM_INTRAOP_THREADS', 'default')}, "
            f"inter-op {inter or os.environ.get('TF_NUM_INTEROP_THREADS', 'default')}")


# --- 5. memory (child processes) ---------------------------------------------------------
def bench_memory(backends: list[str], steps: int) -> list[dict]:
    """One child process per side; rows compare each tinycnn backend with Keras."""
    def run_child(side, backend_name):
        command = [sys.executable, "-m", "benchmarks.memory_child", side,
                   "--backend", backend_name, "--steps", str(steps)]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])
    theirs = run_child("keras", backends[0])
    rows = []
    for name in backends:
        ours = run_child("tinycnn", name)
        rows.append({"name": "peak_memory_train_seed004", "kind": "memory", "backend": name,
                     "tinycnn_s": None, "keras_s": None,
                     "tinycnn_mb": ours["peak_mb"], "keras_mb": theirs["peak_mb"],
                     "ratio": theirs["peak_mb"] / ours["peak_mb"],
                     "tinycnn_before_training_mb": ours["peak_before_training_mb"],
                     "keras_before_training_mb": theirs["peak_before_training_mb"], "steps": steps})
    return rows


# --- the run ---------------------------------------------------------------------------------
def machine_description() -> str:
    """CPU model (from /proc/cpuinfo on Linux) and the number of cores this process may use."""
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{cpu}, {len(os.sched_getaffinity(0))} usable cores"


def check_everything(prepared: list[PreparedCase], pairs: dict, inference: list[InferenceModels],
                     backends: list[str]) -> float:
    """Section 0: every layer, the seed-004 model and each inference model against Keras;
    prints each error, asserts each, returns the worst."""
    print("correctness: same weights on both sides, relative error (tolerance "
          f"{TOLERANCE:g}) of output y, input gradient dx and parameter gradients")
    worst = 0.0
    for p in prepared:
        for name in backends:
            errors = check_case(p, name)
            worst = max(worst, *errors.values())
            print(f"  {p.case.name:28s} [{name}] " + "  ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    for name, (model, twin) in pairs.items():
        error = check_model(model, twin, name)
        worst = max(worst, error)
        print(f"  seed004 model eval softmax [{name}] {error:.1e}")
    for m in inference:
        errors = check_inference(m, backends)
        worst = max(worst, *errors.values())
        print(f"  {m.arch} eval logits " + "  ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    print(f"correctness OK: worst relative error {worst:.1e}")
    return worst


def run(backends: list[str], missing: dict[str, str], reps: int, warmup: int,
        memory_steps: int) -> tuple[list[dict], str]:
    """Check correctness, then run every benchmark; (rows, Markdown header)."""
    load_start = os.getloadavg()
    started = time.time()
    cases = seed004_layer_cases(BATCH)
    flops_per_image = sum(case.forward_flops or 0 for case in cases) / BATCH
    prepared = [prepare_case(case) for case in cases]
    pairs = {name: build_pair(name) for name in backends}
    inference = [inference_models(arch, backends) for arch in INFERENCE_ARCHS]
    worst = check_everything(prepared, pairs, inference, backends)

    rows = [bench_matmul(reps, warmup)]
    matmul_gflops = rows[0]["tinycnn_gflops"]
    print(f"matmul float32: NumPy {matmul_gflops:.0f} GFLOP/s, TensorFlow {rows[0]['keras_gflops']:.0f} GFLOP/s")
    for p in tqdm(prepared, desc="layers"):
        rows += bench_layer(p, backends, reps, warmup, matmul_gflops)
    models = {name: model for name, (model, _) in pairs.items()}
    keras_model = pairs[backends[0]][1]
    print("training step ...")
    rows += bench_train_step(models, keras_model, reps, warmup, flops_per_image, matmul_gflops)
    print("inference ...")
    rows += bench_inference(models, keras_model, reps, warmup, flops_per_image, matmul_gflops)
    for m in inference:
        for batch in INFERENCE_BATCHES:
            rows += bench_fused_inference(m, batch, backends, reps, warmup, matmul_gflops)
    print("peak memory (child processes) ...")
    rows += bench_memory(backends, memory_steps)

    header = run_header(backends, missing, reps, warmup, worst, rows, load_start,
                        time.time() - started)
    return rows, header


THREAD_VARIABLES = ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TINYCNN_THREADS"]


def thread_settings() -> str:
    """The environment variables that set thread counts (and OpenBLAS's kernel choice), as
    they were for this run, and the threads NumPy's OpenBLAS used (the numba kernel set may
    change it when it loads)."""
    settings = [f"{name}={os.environ[name]}" for name in THREAD_VARIABLES + ["OMP_WAIT_POLICY"]
                if name in os.environ]
    return ((", ".join(settings) or "library defaults") + f"; OpenBLAS threads in use: {blas_threads()}"
            f"; {blas_env.blas_description()}; {blas_env.unset_description(UNSET_BLAS)}")


def restart_with_threads(threads: int) -> None:
    """Thread pools are sized when NumPy's BLAS, Numba and TensorFlow load, so to give
    every library ``threads`` threads the benchmark restarts itself with the variables set
    (the memory child processes inherit them)."""
    wanted = {name: str(threads) for name in THREAD_VARIABLES}
    if all(os.environ.get(name) == value for name, value in wanted.items()):
        return
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.keras_compare", *sys.argv[1:]],
              {**os.environ, **wanted, **UNSET_BLAS})   # the restart unsets and reports them again


def inference_threads_used(rows: list[dict]) -> str:
    """The threads of the rows of section 4b, e.g. 'fused [numba] tinycnn.threads 1; layers
    [numba] Numba 2, BLAS 1; TensorFlow intra-op default, inter-op default' (each distinct
    value once)."""
    rows = [row for row in rows if "keras_threads" in row]
    pairs = ([(f"{row['name'].rsplit('_', 1)[1]} [{row['backend']}]", row["tinycnn_threads"]) for row in rows]
             + [("TensorFlow", row["keras_threads"]) for row in rows])
    used: dict[str, list[str]] = {}
    for key, value in pairs:
        if value not in used.setdefault(key, []):
            used[key].append(value)
    return "; ".join(f"{key} {' / '.join(values)}" for key, values in used.items())


def training_threads(rows: list[dict]) -> str:
    """The product thread counts of the numba training-step row, e.g. '2' or '1 / 2'."""
    return next((row["product_threads"] for row in rows
                 if row["name"] == "train_step_seed004" and row["backend"] == "numba"), "no")


def run_header(backends: list[str], missing: dict[str, str], reps: int, warmup: int, worst: float,
               rows: list[dict], load_start: tuple, seconds: float) -> str:
    """The Markdown text above the table: command, machine, versions, method, correctness."""
    import numba
    matmul = rows[0]
    command = "python -m benchmarks.keras_compare " + " ".join(sys.argv[1:])
    unavailable = "".join(f"\n- tinycnn backend `{name}` unavailable: {why}" for name, why in missing.items())
    return f"""# tinycnn vs Keras: seed-004 at batch 64; seed004 and vgg_fer inference at batches 1 and 8

Command: `{command.strip()}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds / 60:.1f} min)

- Machine: {machine_description()}; load average {load_start[0]:.1f} at the start,
  {os.getloadavg()[0]:.1f} at the end (the CPU is shared, so absolute times are noisy;
  tinycnn and Keras samples alternate, so the ratios are the numbers to read).
- Versions: tinycnn {tinycnn.__version__}, NumPy {numpy.__version__}, Numba {numba.__version__},
  TensorFlow {tf.__version__}, Keras {keras.__version__}. tinycnn backends: {', '.join(backends)}.{unavailable}
- Threads and BLAS: {thread_settings()}.
- Threads of the rows infer_<arch>_batch<N>_fused / _layers:
  {inference_threads_used(rows)}
  (the fused model sets BLAS and Numba threads for each call from `tinycnn.threads`, which
  counts the cores the load average leaves free; TensorFlow "default": its own choice).
- Training step: the numba backend's Winograd products ran on {training_threads(rows)} thread(s)
  (`tinycnn/kernels/parallel_matmul.py`: the cores `tinycnn.threads` finds free); the row
  train_step_seed004_products_1_thread forces one, as on a machine other jobs keep busy.
- Machine float32 matmul ({MATMUL_SIZE}^3): NumPy {matmul['tinycnn_gflops']:.0f} GFLOP/s,
  TensorFlow {matmul['keras_gflops']:.0f} GFLOP/s; "(x%)" below is a share of the NumPy figure.
- Each time is the median of {reps} interleaved samples after {warmup} warm-up calls.
  Keras layers run as `tf.function`s in training mode; the training step is `model.train_on_batch`;
  batch-1 inference is `model(x)` (and, on its own row, a `tf.function` of it); batch 256 is
  `model.predict_on_batch`. Rows infer_<arch>_batch<N>_fused time `tinycnn.fuse(model)(x)`,
  rows ..._layers the eval-mode layers without a graph, both against
  `{KERAS_COMPILED}` of the Keras twin (no softmax: both sides return
  logits; batch norms with random statistics). GFLOP/s are nominal: the FLOPs of a direct
  convolution / dense layer (fwd+bwd: 3x the forward, for dx and dw) over the time, so an
  algorithm that multiplies less (Winograd) can pass 100% of the matmul figure.
- Correctness checked first: same weights on both sides, worst relative error of any layer's
  output or gradient, or of a model's output (fused and layers paths too): {worst:.1e}
  (tolerance {TOLERANCE:g}).
- ratio = Keras / tinycnn (time, or peak MB for memory rows): above 1 means tinycnn is better.
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.keras_compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", nargs="+", choices=["numba", "numpy"], default=["numba", "numpy"],
                        help="tinycnn backend(s) to compare with Keras (default: both)")
    parser.add_argument("--reps", type=int, default=7, help="timed samples per side (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per side first")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 reps, 1 warm-up, 2 memory steps")
    parser.add_argument("--steps", type=int, default=4, help="training steps of each memory child")
    parser.add_argument("--threads", type=int, help="threads of every library on both sides (BLAS, Numba, "
                        "TensorFlow); default: each library's own choice")
    parser.add_argument(blas_env.KEEP_OPTION, action="store_true", help=blas_env.KEEP_HELP)
    parser.add_argument("--out", type=Path, help="write keras_compare.json/.md/.png into this folder "
                        "(default: print only; the README's results are in benchmarks/results)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        restart_with_threads(args.threads)
    reps, warmup, steps = (2, 1, 2) if args.quick else (args.reps, args.warmup, args.steps)
    backends, missing = usable_backends(args.backend)
    for name, why in missing.items():
        print(f"tinycnn backend {name!r} unavailable: {why}")
    if not backends:
        sys.exit("no usable tinycnn backend")
    rows, header = run(backends, missing, reps, warmup, steps)
    print(header)
    print(report.markdown_table(rows))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        report.write_json(rows, args.out / "keras_compare.json")
        report.write_markdown(rows, header, args.out / "keras_compare.md")
        report.write_bar_chart(rows, args.out / "keras_compare.png",
                               "tinycnn vs Keras: seed-004 at batch 64; fused inference, seed004 and vgg_fer")
        print(f"wrote {args.out}/keras_compare.json, .md, .png")


if __name__ == "__main__":
    main()
