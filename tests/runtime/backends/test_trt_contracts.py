"""The TensorRT backend against fakes that enforce pycuda's and TensorRT's contracts (tests/trt_fakes/README.md).

No GPU and no TensorRT here: the fakes refuse what the real libraries refuse (no current CUDA context on the
calling thread, memory of another context, a second execution context without a profile on 8.x, a plugin library
registered twice), so these tests fail on code that would fail on a Jetson, and pass only when the contract is met.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import pytest

from dsrir.trt import plugin as trt_plugin
from export.engine.builder import preview_features
from runtime.backends.trt_buffers import profile_candidates
from runtime.video import main
from tests.conftest import natural_like_image, read_video
from tests.paths import TRT_FAKES

MAX_HW = (64, 64)


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, ModuleType]]:
    """Fresh fake ``tensorrt`` and ``pycuda`` modules for one test; the real (or stub) modules come back after."""
    ours = ("pycuda", "tensorrt")
    saved = {name: module for name, module in sys.modules.items() if name.split(".")[0] in ours}
    for name in saved:
        del sys.modules[name]
    monkeypatch.syspath_prepend(str(TRT_FAKES))
    monkeypatch.setattr(trt_plugin, "_loaded", {})
    import pycuda.driver as driver
    import tensorrt

    assert Path(tensorrt.__file__).is_relative_to(TRT_FAKES)
    yield tensorrt, driver
    for name in [name for name in sys.modules if name.split(".")[0] in ours]:
        del sys.modules[name]
    sys.modules.update(saved)


def write_engine(
    path: Path,
    dtype_in: str = "float32",
    dtype_out: str = "float32",
    profiles: int = 1,
    sharing: bool = False,
    layout: str = "nchw",
    max_batch: int = 1,
) -> Path:
    """A fake engine whose output is 1 - input (float) or 255 - input (uint8)."""
    shape = (lambda n, h, w: [n, 3, h, w]) if layout == "nchw" else (lambda n, h, w: [n, h, w, 3])
    ranges = [shape(1, 8, 8), shape(1, 32, 32), shape(max_batch, *MAX_HW)]
    uint8 = dtype_in == "uint8"
    spec = {
        "inputs": [{"name": "input", "dtype": dtype_in}],
        "outputs": [{"name": "output", "dtype": dtype_out}],
        "profiles": [ranges] * profiles,
        "profile_sharing": sharing,
        "scale": -1.0,
        "offset": 255.0 if uint8 else 1.0,
    }
    path.write_text(json.dumps(spec))
    return path


def frame(seed: int, hw: tuple[int, int] = (32, 48)) -> np.ndarray:
    return (natural_like_image(*hw, seed).astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()


def run_frames(backend: Any, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Submit/collect ``count`` frames, keeping every slot busy, as runtime.pipeline's inference thread does."""
    pairs, pending = [], []
    for seed in range(count):
        batch = frame(seed)
        pending.append((batch, backend.submit(batch)))
        if len(pending) == backend.slots_in_flight:
            first, slot = pending.pop(0)
            pairs.append((first, backend.collect(slot)))
    pairs += [(batch, backend.collect(slot)) for batch, slot in pending]
    return pairs


def open_trt(path: Path) -> Any:
    from runtime.backends.tensorrt_backend import TrtBackend

    return TrtBackend(path)


def test_backend_opened_on_one_thread_runs_on_another_in_the_primary_context(
    fake_gpu: tuple[ModuleType, ModuleType], tmp_path: Path
) -> None:
    """runtime.pipeline opens the backend on the main thread and feeds it from ``dsrir-infer``."""
    _, driver = fake_gpu
    backend = open_trt(write_engine(tmp_path / "m.engine"))
    assert driver.current_context() is None  # nothing left current on the opening thread
    results: list[Any] = []

    def infer() -> None:
        try:
            results.extend(run_frames(backend, 4))
        except Exception as exc:  # surfaced below with its message
            results.append(exc)

    worker = threading.Thread(target=infer, name="dsrir-infer")
    worker.start()
    worker.join()
    assert not [r for r in results if isinstance(r, Exception)], results
    for batch, output in results:
        np.testing.assert_allclose(output, 1 - batch, atol=1e-6)
    backend.close()
    assert driver.current_context() is None


@pytest.mark.parametrize(
    ("version", "sharing", "profiles", "slots"),
    [
        ("8.6.1", True, 1, 2),  # built by export.build_engine on 8.6: PROFILE_SHARING_0806
        ("8.6.1", False, 1, 1),  # an 8.6 engine from elsewhere: one slot, and the description says why
        ("8.5.3", False, 2, 2),  # one profile per context
        ("8.5.3", True, 1, 1),  # 8.5 has no profile sharing
        ("10.3.0", False, 1, 2),  # 10.x shares always
    ],
)
def test_every_slot_gets_a_profile_on_each_tensorrt_line(
    fake_gpu: tuple[ModuleType, ModuleType], tmp_path: Path, version: str, sharing: bool, profiles: int, slots: int
) -> None:
    tensorrt, _ = fake_gpu
    tensorrt.__version__ = version
    backend = open_trt(write_engine(tmp_path / "m.engine", profiles=profiles, sharing=sharing))
    assert backend.slots_in_flight == slots
    assert ("1 slot:" in backend.description) is (slots == 1)
    for batch, output in run_frames(backend, 5):
        np.testing.assert_allclose(output, 1 - batch, atol=1e-6)
    backend.close()


@pytest.mark.parametrize(("dtype_in", "dtype_out"), [("float16", "float16"), ("float32", "float16")])
def test_io_dtypes_come_from_the_engine(
    fake_gpu: tuple[ModuleType, ModuleType], tmp_path: Path, dtype_in: str, dtype_out: str
) -> None:
    backend = open_trt(write_engine(tmp_path / "m.engine", dtype_in=dtype_in, dtype_out=dtype_out))
    assert backend.io == "float"
    for batch, output in run_frames(backend, 3):
        assert output.dtype == np.float32
        np.testing.assert_allclose(output, 1 - batch, atol=2e-3)  # float16 rounding
    backend.close()


def test_uint8_engine_takes_nhwc_frames(fake_gpu: tuple[ModuleType, ModuleType], tmp_path: Path) -> None:
    backend = open_trt(write_engine(tmp_path / "m.engine", "uint8", "uint8", layout="nhwc"))
    assert (backend.io, backend.layout) == ("uint8", "nhwc")
    batch = natural_like_image(32, 48, 0)[None]
    output = backend.infer(batch)
    assert output.dtype == np.uint8 and np.array_equal(output, 255 - batch)
    backend.close()


def test_a_batch_up_to_the_profiles_largest_fits_the_buffers(
    fake_gpu: tuple[ModuleType, ModuleType], tmp_path: Path
) -> None:
    """Several streams share one engine: the buffers hold the profile's largest batch, not one frame."""
    backend = open_trt(write_engine(tmp_path / "m.engine", max_batch=4))
    assert backend.max_batch == 4
    batch = np.concatenate([frame(seed) for seed in range(3)])
    np.testing.assert_allclose(backend.infer(batch), 1 - batch, atol=1e-6)
    backend.close()


@pytest.mark.parametrize(("dtype", "layout"), [("float32", "nchw"), ("float16", "nchw"), ("uint8", "nhwc")])
def test_frames_are_prepared_straight_into_the_slots_input(
    fake_gpu: tuple[ModuleType, ModuleType], tmp_path: Path, dtype: str, layout: str
) -> None:
    """FrameRunner writes each frame into the page-locked input of the slot it runs on (no copy), one at a time, in
    flight and batched, and the engine still sees the frame."""
    from runtime.frames import FrameRunner

    backend = open_trt(write_engine(tmp_path / "m.engine", dtype, dtype, layout=layout, max_batch=2))
    own: list[bool] = []
    submit = backend.submit

    def spy(batch: np.ndarray) -> int:
        own.append(np.shares_memory(batch, backend.slots[backend.next_slot].host_in))
        return submit(batch)

    backend.submit = spy
    runner = FrameRunner(backend)
    frames = [natural_like_image(30, 44, seed) for seed in range(3)]
    tickets = [runner.submit(image) for image in frames[:2]]
    restored = [runner.collect(ticket) for ticket in tickets]
    restored += runner.run_batch(frames[1:]) + [runner.run(frames[2])]
    for got, image in zip(restored, [*frames[:2], *frames[1:], frames[2]]):
        assert np.abs(got.astype(np.int16) - (255 - image.astype(np.int16))).max() <= 1  # the engine inverts
    assert own == [True] * 4
    backend.close()


def test_plugin_library_is_loaded_once_per_process(fake_gpu: tuple[ModuleType, ModuleType], tmp_path: Path) -> None:
    """IPluginRegistry.load_library returns None for a library whose creators are registered: building an engine
    and then opening it in the same process loads the same path twice."""
    tensorrt, _ = fake_gpu
    library = tmp_path / "libdsrir_plugins.so"
    library.write_text(json.dumps({"creators": ["DSRIR_PatchAttention"]}))
    registry = tensorrt.get_plugin_registry()
    trt_plugin.load_plugin_library(library, "dynamic", registry)
    trt_plugin.load_plugin_library(tmp_path / "." / library.name, "dynamic", registry)  # same file, other spelling
    assert registry.loaded == [str(library.resolve())]
    assert trt_plugin.has_creator(registry, 10)


def test_threaded_pipeline_streams_a_file_through_two_slots(
    fake_gpu: tuple[ModuleType, ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end: python -m runtime.video on a 20-frame file, a two-slot engine, the inference on its own thread."""
    source, output = tmp_path / "in.avi", tmp_path / "out.avi"
    frames = [natural_like_image(48, 64, seed) for seed in range(20)]
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for image in frames:
        writer.write(image)
    writer.release()
    engine = write_engine(tmp_path / "m.engine")
    argv = ["--input", str(source), "--model", str(engine), "--output", str(output), "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    restored, decoded = read_video(output), read_video(source)
    assert len(restored) == len(decoded) == 20
    for got, shown in zip(restored, decoded):  # the engine inverts; MJPG is lossy on both sides
        assert float(np.abs(got.astype(np.int16) - (255 - shown.astype(np.int16))).mean()) < 6
    assert "tensorrt 10.3.0" in capsys.readouterr().err


def test_profile_candidates_and_preview_features_per_version() -> None:
    assert profile_candidates(0, 1) == [0] and profile_candidates(1, 1) == [0] and profile_candidates(1, 2) == [0, 1]
    assert preview_features((8, 6, 1)) == ("PROFILE_SHARING_0806",)
    assert preview_features((8, 5, 3)) == preview_features((10, 3)) == preview_features((11, 1)) == ()
