"""tinycnn.fuse: the inference-only model gives the eval-mode model's outputs on every
architecture, backend (numpy, numba, the CuPy stand-in) and batch size."""
from __future__ import annotations

import numpy
import pytest

import tinycnn
from benchmarks.model_steps import with_batch_norm_statistics
from fer_app.models import ARCHITECTURES, build_model
from fer_app.models.ensemble import Ensemble
from tests.conftest import CPU_BACKENDS, using_backend
from tests.fake_cupy import make_fake_cupy
from tinycnn import backend, nn
from tinycnn.backend import Backend
from tinycnn.fuse import fold_batch_norm
from tinycnn.kernels import cupy_gpu

BATCH_SIZES = (1, 3, 8)   # numba: im2col below 4 images, Winograd from 4
RTOL, ATOL = 1e-4, 1e-5


def faces(n: int, seed: int = 0, size: int = 48) -> numpy.ndarray:
    return numpy.random.default_rng(seed).normal(size=(n, 1, size, size)).astype(numpy.float32)


def unfused(model: nn.Module, x: numpy.ndarray) -> numpy.ndarray:
    with tinycnn.no_grad():
        return model(tinycnn.Tensor(x)).numpy()


def every_layer_kind() -> nn.Sequential:
    """What the app's models do not have: a conv without ReLU or BN, a 3x3 pool that does
    not fuse, batch norm after pooling, a lone ReLU, a nested Sequential, odd sizes."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.MaxPool2d(2),            # 13 -> 6: pool fused, floor
        nn.Sequential(nn.Conv2d(6, 8, 3, padding="same"), nn.BatchNorm2d(8)),
        nn.MaxPool2d(3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),   # 6 -> 3
        nn.Conv2d(8, 5, 3, padding=1, bias=False),                 # no bias, no ReLU, no pool
        nn.Flatten(), nn.Dropout(0.5),
        nn.Linear(5 * 3 * 3, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))


@pytest.mark.parametrize("name", CPU_BACKENDS)
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_fused_equals_eval_mode_on_every_architecture(arch, name):
    with using_backend(name):
        tinycnn.manual_seed(1)
        model = with_batch_norm_statistics(build_model(arch), seed=2)
        fused = tinycnn.fuse(model)
        for n in BATCH_SIZES:
            x = faces(n, seed=n)
            expected = unfused(model, x)
            scale = max(1.0, float(numpy.abs(expected).max()))   # float32 rounding grows with it
            numpy.testing.assert_allclose(fused(x), expected, rtol=RTOL, atol=ATOL * scale,
                                          err_msg=f"{arch} on {name}, batch {n}")


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_an_empty_batch_gives_empty_logits_fused_and_unfused(name):
    """No faces in, (0, classes) out on both paths (Flatten's reshape(N, -1) refused N = 0)."""
    with using_backend(name):
        model = with_batch_norm_statistics(build_model("vgg_fer"), seed=3)
        x = faces(0, seed=0)
        assert tinycnn.fuse(model)(x).shape == (0, 7) and unfused(model, x).shape == (0, 7)


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_fused_equals_eval_mode_on_every_layer_kind(name):
    with using_backend(name):
        tinycnn.manual_seed(3)
        fused = fused_like_eval_mode(with_batch_norm_statistics(every_layer_kind(), seed=4), size=13)
        assert step_kinds(fused) == ["ConvStep", "ConvStep", "KernelStep", "AffineStep", "KernelStep",
                                     "ConvStep", "FlattenStep", "LinearStep", "LinearStep"]
        assert (fused.steps[0].pool, fused.steps[0].relu) == (True, False)


def fused_like_eval_mode(model: nn.Sequential, size: int):
    """tinycnn.fuse(model), checked against the eval-mode model at every batch size on
    size x size inputs."""
    fused = tinycnn.fuse(model)
    for n in BATCH_SIZES:
        x = faces(n, seed=n, size=size)
        numpy.testing.assert_allclose(fused(x), unfused(model, x), rtol=RTOL, atol=ATOL)
    return fused


def step_kinds(fused) -> list[str]:
    return [type(step).__name__ for step in fused.steps]


def residual_blocks() -> nn.Sequential:
    """A Residual with the identity shortcut, one with a 1x1 conv + BN shortcut, and pooling."""
    def body(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                             nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out))
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
        nn.Residual(body(4, 4)),
        nn.Residual(body(4, 6), nn.Sequential(nn.Conv2d(4, 6, 1, bias=False), nn.BatchNorm2d(6))),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 5 * 5, 3))


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_fused_residual_blocks_equal_eval_mode(name):
    with using_backend(name):
        tinycnn.manual_seed(5)
        fused = fused_like_eval_mode(with_batch_norm_statistics(residual_blocks(), seed=6), size=10)
        assert step_kinds(fused) == ["ConvStep", "ResidualStep", "ResidualStep", "KernelStep",
                                     "FlattenStep", "LinearStep"]
        identity, projection = fused.steps[1], fused.steps[2]
        assert identity.shortcut == [] and [type(s).__name__ for s in projection.shortcut] == ["ConvStep"]
        assert [step.relu for step in identity.body] == [True, False]   # the sum gets the last ReLU


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_fused_ensemble_equals_the_ensemble(name):
    with using_backend(name):
        tinycnn.manual_seed(5)
        ensemble = with_batch_norm_statistics(Ensemble([build_model("vgg_fer"), build_model("seed004")]), 6)
        fused = ensemble.fuse()
        for n in BATCH_SIZES:
            x = faces(n, seed=10 + n)
            numpy.testing.assert_allclose(numpy.exp(fused(x)), numpy.exp(unfused(ensemble, x)),
                                          rtol=RTOL, atol=ATOL)


def test_folding_follows_the_formula():
    """w' = w * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps)."""
    with using_backend("numpy"):
        conv = nn.Conv2d(3, 4, 3)
        bn = with_batch_norm_statistics(nn.Sequential(nn.BatchNorm2d(4)), seed=7)[0]
        w, b = fold_batch_norm(conv.weight.data, conv.bias.data, bn)
    s = bn.weight.data / numpy.sqrt(bn.running_var + bn.eps)
    numpy.testing.assert_allclose(w, conv.weight.data * s[:, None, None, None], rtol=1e-6)
    numpy.testing.assert_allclose(b, (conv.bias.data - bn.running_mean) * s + bn.bias.data,
                                  rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_outputs_are_not_overwritten_by_later_calls_and_the_model_is_untouched(name):
    with using_backend(name):
        model = with_batch_norm_statistics(build_model("vgg_fer"), seed=8)
        before = model.state_dict()
        fused = tinycnn.fuse(model)
        first = fused(faces(2, seed=1))
        kept = first.copy()
        for n in (2, 5, 1, 2):          # the same and other shapes reuse or replace the buffers
            fused(faces(n, seed=20 + n))
        numpy.testing.assert_array_equal(first, kept)
        numpy.testing.assert_allclose(fused(faces(2, seed=1)), kept, rtol=1e-6)
        for key, value in model.state_dict().items():
            numpy.testing.assert_array_equal(value, before[key], err_msg=key)


def test_fuse_refuses_what_it_cannot_fuse():
    with using_backend("numpy"):
        with pytest.raises(TypeError, match="nn.Sequential"):
            tinycnn.fuse(Ensemble([build_model("seed002")]))

        class Square(nn.Module):
            def forward(self, x):
                return x * x

        with pytest.raises(TypeError, match="Square"):
            tinycnn.fuse(nn.Sequential(nn.Linear(3, 2), Square()))


# --- the CuPy stand-in -------------------------------------------------------------------
@pytest.fixture
def device(monkeypatch):
    """tests/fake_cupy.py registered as backend "cupy" for the test (registry restored after)."""
    monkeypatch.setattr(backend, "_LOADERS", dict(backend._LOADERS))
    monkeypatch.setattr(backend, "_LOADED", dict(backend._LOADED))
    monkeypatch.setattr(backend, "_current", backend._current)
    fake = make_fake_cupy()
    backend.register("cupy", lambda: Backend("cupy", fake, cupy_gpu))
    return backend.get("cupy")


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_fused_on_the_cupy_standin_equals_the_numpy_backend(device, arch):
    with using_backend("numpy"):
        tinycnn.manual_seed(9)
        model = with_batch_norm_statistics(build_model(arch), seed=10)
        expected = {n: unfused(model, faces(n, seed=n)) for n in BATCH_SIZES}
    fused = tinycnn.fuse(model.to("cupy"))
    assert fused.backend.name == "cupy"
    for n in BATCH_SIZES:
        out = fused(faces(n, seed=n))                  # host input, copied to the device
        assert isinstance(out, device.xp.ndarray)
        numpy.testing.assert_allclose(device.xp.asnumpy(out), expected[n], rtol=RTOL, atol=ATOL)


def test_fused_ensemble_on_the_cupy_standin(device):
    with using_backend("numpy"):
        tinycnn.manual_seed(11)
        ensemble = with_batch_norm_statistics(Ensemble([build_model("seed002", 6), build_model("vgg_fer", 6)]), 12)
        expected = unfused(ensemble, faces(3))
    fused = ensemble.to("cupy").fuse()
    numpy.testing.assert_allclose(device.xp.asnumpy(fused(faces(3))), expected, rtol=RTOL, atol=ATOL)


# --- fer_app's Classifier runs the fused network by default ---------------------------------
@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_classifier_fused_and_unfused_predict_the_same(name, tmp_path):
    from fer_app.data.normalize import Normalizer
    from fer_app.recognition.inference import Classifier, load_classifier
    with using_backend(name):
        tinycnn.manual_seed(13)
        network = with_batch_norm_statistics(Ensemble([build_model("vgg_fer"), build_model("seed002")]), 14)
        metadata = {"arch": "ensemble", "num_classes": 7, "class_names": [f"c{k}" for k in range(7)],
                    "normalization": Normalizer("per_image").to_dict(),
                    "members": [{"arch": "vgg_fer"}, {"arch": "seed002"}]}
        tinycnn.save(network.state_dict(), str(tmp_path / "model.npz"), metadata)
        fused, plain = (load_classifier(str(tmp_path / "model.npz"), name, fused=flag)
                        for flag in (True, False))
        assert fused.fused is not None and plain.fused is None
        faces = numpy.random.default_rng(15).integers(0, 256, (9, 48, 48)).astype(numpy.uint8)
        numpy.testing.assert_allclose(fused.predict_proba(faces), plain.predict_proba(faces),
                                      rtol=RTOL, atol=ATOL)
        numpy.testing.assert_array_equal(fused.predict(faces), plain.predict(faces))
        direct = Classifier(network, metadata["class_names"], Normalizer("per_image"))
        numpy.testing.assert_allclose(direct.predict_logits(faces, batch_size=4),
                                      plain.predict_logits(faces), rtol=RTOL, atol=ATOL)


# --- threads: set for the call, put back after it ---------------------------------------
def test_inference_threads_sets_blas_and_numba_for_the_block_and_restores_them(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from tinycnn import threads

    def blas_counts():
        return [info["num_threads"] for info in threadpoolctl.threadpool_info()
                if info["user_api"] == "blas"]

    before = blas_counts()
    threads.set_threads(1)
    try:
        with threads.inference_threads():
            assert set(blas_counts()) <= {1}
            with threads.inference_threads():          # nested: left as the outer block set it
                assert set(blas_counts()) <= {1}
    finally:
        threads.set_threads(None)
    assert blas_counts() == before
    monkeypatch.setenv("TINYCNN_THREADS", "3")
    assert threads.threads() == 3
    for bad in ("abc", "0", "-2", "1.5"):
        monkeypatch.setenv("TINYCNN_THREADS", bad)
        with pytest.raises(tinycnn.backend.BackendError, match="TINYCNN_THREADS"):
            threads.threads()
    monkeypatch.delenv("TINYCNN_THREADS")
    assert 1 <= threads.threads() <= threads.cores()
    with pytest.raises(ValueError):
        threads.set_threads(0)


def test_free_cores_are_the_cores_less_the_load_of_other_processes(monkeypatch):
    from tinycnn import threads
    monkeypatch.setattr(threads, "cores", lambda: 8)
    monkeypatch.setattr(threads.time, "process_time", lambda: 0.0)   # this process: idle
    monkeypatch.setattr(threads, "_own", (threads.time.monotonic() - 1.0, 0.0))
    for load, free in ((0.2, 8), (3.0, 5), (7.6, 1), (30.0, 1)):
        monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, load, load))
        assert threads.free_cores() == free, load
    busy = iter([100.0, 102.0])                 # 2 CPU seconds per second: 2 busy threads of ours
    clock = iter([50.0, 51.0])
    monkeypatch.setattr(threads.time, "process_time", lambda: next(busy))
    monkeypatch.setattr(threads.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (3.0, 3.0, 3.0))
    threads.free_cores()                        # first look at 100 s of CPU
    assert threads.free_cores() == 7            # load 3 of which 2 are ours: 8 - 1
