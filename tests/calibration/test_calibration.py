"""``calibration``: the calibrators against numpy, the TensorRT cache format, and ranges measured on a real export.

The end-to-end tests export dsrir-xs (random weights, fixed seed) once and calibrate it on 4 synthetic 32x32
frames: ranges are checked against an independent ONNX Runtime run, and the CLI is run twice (the second run must
reuse the ranges). Crop windows are checked on tiny frames: aligned, inside, seeded, cut from the frame as made at
the deployment size, recorded in the manifest, and part of what decides ranges reuse.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from calibration.calibrators import (
    EntropyCalibrator,
    MaxCalibrator,
    PercentileCalibrator,
    entropy_divergences,
    make_calibrator,
)
from calibration.cli import main as calibration_main
from calibration.cli import reusable
from calibration.collect import (
    activation_tensors,
    calibration_settings,
    check_calibratable,
    collect_ranges,
    plan_runs,
)
from calibration.dataset import CROP_ALIGN, build_calibration_set, parse_crop
from calibration.qdq import qdq_structure
from calibration.ranges import Ranges, conv_sites, is_quantized_module
from calibration.trt_cache import check_cache_names
from dsrir.errors import DSRIRError
from dsrir.graph.metadata import read_metadata, write_metadata
from dsrir.trt.calib_cache import cache_header, read_calibration_cache, write_calibration_cache

pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript")

SIZE = (32, 32)
FRAMES = 4
PLUGIN_QDQ = "model_qdq_plugin.onnx"


def test_max_is_exact_over_batches() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal(1000).astype(np.float32) * scale for scale in (1.0, 3.0, 0.5)]
    batches[1][17] = -11.25  # the largest magnitude is negative
    calibrator = MaxCalibrator()
    for batch in batches:
        calibrator.collect(batch)
    assert calibrator.compute_amax() == 11.25


@pytest.mark.parametrize("second_scale", [1.0, 3.0, 1e5])  # same range, grown range, grown past the bin cap
def test_percentile_matches_numpy_within_one_bin(second_scale: float) -> None:
    rng = np.random.default_rng(1)
    first = rng.standard_normal(200_000).astype(np.float32)
    second = rng.standard_normal(200_000).astype(np.float32) * np.float32(second_scale)
    calibrator = PercentileCalibrator(percentile=99.9)
    calibrator.collect(first)
    calibrator.collect(second)
    expected = np.percentile(np.abs(np.concatenate([first, second])), 99.9)
    histogram = calibrator.histogram
    assert histogram.counts.sum() == 400_000 and len(histogram.counts) <= histogram.max_bins
    assert abs(calibrator.compute_amax() - expected) <= histogram.width


def reference_divergences(hist: np.ndarray, levels: int = 128) -> np.ndarray:
    """TensorRT's KL search written out bin by bin, to check the vectorised version."""
    bins = hist.astype(np.float64)
    bins[0] = bins[1]
    result = []
    for i in range(levels, len(bins) + 1):
        p = bins[:i].copy()
        p[-1] += bins[i:].sum()
        level = np.arange(i) * levels // i  # bin j belongs to level floor(j * levels / i)
        q = np.zeros(i)
        for k in range(levels):
            members = (level == k) & (bins[:i] > 0)
            if members.any():
                q[members] = bins[:i][members].sum() / members.sum()
        p, q = p / p.sum(), q / q.sum()
        inside = p > 0
        result.append(np.inf if (q[inside] == 0).any() else float(np.sum(p[inside] * np.log(p[inside] / q[inside]))))
    return np.array(result)


def test_entropy_divergences_match_the_direct_search() -> None:
    rng = np.random.default_rng(2)
    hist = rng.integers(0, 50, size=300)
    hist[rng.random(300) < 0.2] = 0  # empty bins: Q keeps them empty, clipping into one is infinitely bad
    fast, slow = entropy_divergences(hist), reference_divergences(hist)
    assert np.array_equal(np.isinf(fast), np.isinf(slow)) and np.isinf(slow).any()
    np.testing.assert_allclose(fast[np.isfinite(slow)], slow[np.isfinite(slow)], rtol=0, atol=1e-12)


def test_entropy_clips_outliers_but_keeps_the_gaussian() -> None:
    """N(0, 1) plus five values at 50: the histogram spans 0..50 (bin width 50 / 2048), the smallest candidate
    threshold is 128.5 bins = 3.14. Clipping the Gaussian's tail (4e-5 of the mass beyond 4.1) costs less than
    quantising 0..50 coarsely but more than spending a few levels beyond 4; the search settles near 4.6."""
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.standard_normal(1_000_000), np.full(5, 50.0)]).astype(np.float32)
    calibrator = EntropyCalibrator()
    calibrator.collect(values)
    amax = calibrator.compute_amax()
    assert 3.5 < amax < 8.0, amax
    assert make_calibrator("max").__class__ is MaxCalibrator
    with pytest.raises(ValueError, match="unknown calibrator"):
        make_calibrator("kl")


@pytest.mark.parametrize(
    ("version", "header"), [((8, 6, 1), "TRT-8601"), ((8, 5), "TRT-8500"), ((10, 3), "TRT-100300")]
)
def test_cache_header_follows_tensorrt_version_code(version: tuple[int, ...], header: str) -> None:
    assert cache_header(version) == f"{header}-EntropyCalibration2"


def test_no_cache_for_tensorrt_11() -> None:
    with pytest.raises(DSRIRError, match="TensorRT 11 has no INT8 calibrators"):
        cache_header((11, 1))


def export_xs(folder: Path, seed: int = 0, patch_attention: str = "decomposed") -> Path:
    """dsrir-xs with seeded random weights, exported to ``folder``."""
    from dsrir.graph.save import save_onnx
    from dsrir.model import DSRIR, PRESETS
    from export.onnx.build import ExportOptions, build_onnx

    torch.manual_seed(seed)
    model = DSRIR(PRESETS["dsrir-xs"]).eval()
    options = ExportOptions(patch_attention=patch_attention, simplify=False, check_size=SIZE)
    path = folder / f"xs_{seed}_{patch_attention}.onnx"
    save_onnx(build_onnx(model, "dsrir-xs", "all_in_one", options).model, path)
    return path


@pytest.fixture(scope="module")
def fp32_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_xs(tmp_path_factory.mktemp("calibration"))


@pytest.fixture(scope="module")
def max_ranges(fp32_onnx: Path, clean_dir: Path) -> Ranges:
    dataset = build_calibration_set("synthetic", str(clean_dir), FRAMES, SIZE, seed=0)
    return collect_ranges(fp32_onnx, dataset, "max")


def test_max_ranges_match_an_independent_run(fp32_onnx: Path, clean_dir: Path, max_ranges: Ranges) -> None:
    model = onnx.load(str(fp32_onnx))
    sites = [site for module, site in conv_sites(model).items() if is_quantized_module(module)]
    conv_inputs = sorted({site.input for site in sites} - {"input"})
    assert len(sites) > 50 and set(conv_inputs) <= set(max_ranges.activations) and "input" in max_ranges.activations
    del model.graph.output[:]
    model.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in conv_inputs)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    frames = list(build_calibration_set("synthetic", str(clean_dir), FRAMES, SIZE, seed=0))
    assert len(frames) == FRAMES and all(f.shape == (1, 3, 32, 32) and f.dtype == np.float32 for f in frames)
    outputs = [session.run(conv_inputs, {"input": frame}) for frame in frames]
    for i, name in enumerate(conv_inputs):
        assert max_ranges.activations[name] == max(float(np.abs(run[i]).max()) for run in outputs), name
    assert max_ranges.activations["input"] == max(float(f.max()) for f in frames)
    weights = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    for site in sites:
        expected = np.abs(weights[site.weight]).reshape(len(weights[site.weight]), -1).max(axis=1)
        assert max_ranges.weights[site.weight] == expected.tolist()
    assert not any(".PA.conv_du." in name for name in max_ranges.weights)


def test_activations_are_float_data_tensors(fp32_onnx: Path, max_ranges: Ranges) -> None:
    model = onnx.load(str(fp32_onnx))
    names = activation_tensors(model)
    assert names[0] == "input" and set(names) == set(max_ranges.activations)
    initializers = {init.name for init in model.graph.initializer}
    assert not initializers & set(names)
    producers = {out: node.op_type for node in model.graph.node for out in node.output}
    assert {producers[n] for n in names[1:]} >= {"Conv", "Relu", "Sigmoid", "Mul", "Add", "ReduceMean"}
    assert "Shape" not in {producers[n] for n in names[1:]}


def test_runs_are_grouped_under_the_memory_budget() -> None:
    assert plan_runs(["a", "b", "c", "d"], [4, 4, 9, 2], budget=8) == [["a", "b"], ["c"], ["d"]]
    assert plan_runs(["a", "b"], [1, 1], budget=100) == [["a", "b"]]


def test_cache_round_trip_is_bit_exact(fp32_onnx: Path, max_ranges: Ranges, tmp_path: Path) -> None:
    cache = tmp_path / "calib.cache"
    write_calibration_cache(max_ranges.scales(), cache, (10, 3))
    lines = cache.read_text().splitlines()
    assert lines[0] == "TRT-100300-EntropyCalibration2" and len(lines) == len(max_ranges.activations) + 1
    scales = read_calibration_cache(cache).scales
    for name in max_ranges.activations:
        expected = np.float32(max_ranges.scale(name))  # amax / 127; an all-zero tensor gets the smallest scale
        assert struct.pack(">f", scales[name]) == struct.pack(">f", expected), name
    model = onnx.load(str(fp32_onnx))
    assert check_cache_names(scales, model).ok
    check = check_cache_names([*list(scales)[5:], "not_a_tensor"], model)
    assert not check.ok and check.unknown == ["not_a_tensor"]
    assert "1 cache names not in the graph (not_a_tensor)" in check.line()


def test_video_frames_are_sampled_evenly(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 40))
    for i in range(10):
        writer.write(np.full((40, 48, 3), 20 * i, np.uint8))
    writer.release()
    dataset = build_calibration_set("video", str(video), count=4, size=(16, 16))
    assert [f.frame for f in dataset.plan] == [1, 3, 6, 8]
    levels = [round(float(frame.mean()) * 255 / 20) for frame in dataset]
    assert levels == [1, 3, 6, 8]


def test_manifest_identity(clean_dir: Path, tmp_path: Path) -> None:
    first = build_calibration_set("synthetic", str(clean_dir), 6, SIZE, seed=0)
    assert [f.task for f in first.plan] == ["noise", "rain", "haze"] * 2
    assert first.manifest_sha256 == build_calibration_set("synthetic", str(clean_dir), 6, SIZE, 0).manifest_sha256
    assert first.manifest_sha256 != build_calibration_set("synthetic", str(clean_dir), 6, SIZE, 1).manifest_sha256
    images = build_calibration_set("images", str(clean_dir / "photo_*.png"), 3, SIZE)
    assert [f.source for f in images.plan] == [1, 3, 5] and images.manifest()["count"] == 3
    with pytest.raises(DSRIRError, match="--images .*: no image files"):
        build_calibration_set("images", str(tmp_path / "*.png"), 3, SIZE)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("patch_attention", "plugin", "patch attention plugin, not decomposed"),
        ("precision", "fp16", "precision fp16, not fp32"),
        ("precision", "int8-qdq", "precision int8-qdq, not fp32"),
        ("io", "uint8", "uint8 I/O in 0-1, not float 0-1"),
    ],
)
def test_refuses_graphs_that_are_not_the_fp32_export(fp32_onnx: Path, field: str, value: str, message: str) -> None:
    import dataclasses

    model = onnx.load(str(fp32_onnx), load_external_data=False)
    write_metadata(model, dataclasses.replace(read_metadata(model), **{field: value}))
    with pytest.raises(DSRIRError, match=f"{message}; calibrate the decomposed FP32"):
        check_calibratable(model, fp32_onnx)


def test_cli_writes_the_artefacts_then_reuses_the_ranges(
    fp32_onnx: Path, clean_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["--onnx", str(fp32_onnx), "--synthetic", str(clean_dir), "--count", str(FRAMES), "--size", "32x32"]
    args += ["--calibrator", "percentile", "--output-dir", str(out)]
    assert calibration_main(args) == 0
    first = capsys.readouterr().out
    for name in ("ranges.json", "calib.cache", "manifest.json"):
        assert (out / name).is_file() and str(out / name) in first
    assert "reusing" not in first and "every quantised conv input has a scale" in first
    ranges = Ranges.load(out / "ranges.json")
    assert ranges.calibrator == "percentile" and ranges.settings["percentile"] == 99.99
    assert qdq_structure(onnx.load(str(out / "model_qdq.onnx"))).scale_types == ("FLOAT16",)  # default 10.3
    assert calibration_main([*args, "--target-trt", "8.6"]) == 0
    assert "reusing ranges from" in capsys.readouterr().out
    assert qdq_structure(onnx.load(str(out / "model_qdq.onnx"))).scale_types == ("FLOAT",)  # 8.x: FP16 flag
    dataset = build_calibration_set("synthetic", str(clean_dir), FRAMES, SIZE, seed=0)
    other = calibration_settings("percentile", 99.9)
    assert reusable(out / "ranges.json", ranges.model_sha256, dataset, other) is None
    assert "made with another calibrator settings" in capsys.readouterr().out


def int8_conv_weights(model: onnx.ModelProto) -> set[str]:
    """The weight initializers of the convolutions whose data and weight both come from a DequantizeLinear."""
    producers = {out: node for node in model.graph.node for out in node.output}

    def dequantized(tensor: str) -> onnx.NodeProto | None:
        node = producers.get(tensor)
        return node if node is not None and node.op_type == "DequantizeLinear" else None

    weights = set()
    for conv in (node for node in model.graph.node if node.op_type == "Conv"):
        data, weight = dequantized(conv.input[0]), dequantized(conv.input[1])
        if data is not None and weight is not None:
            weights.add(producers[weight.input[0]].input[0])  # DQ <- Q <- the float weight
    return weights


def test_cli_carries_the_ranges_to_the_plugin_flavour(
    fp32_onnx: Path, clean_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """TensorRT's plugin graph gets the same INT8 convolutions and scales as the decomposed graph calibrated, so the
    two compute the same (to float rounding: a value on a rounding edge may land one INT8 step apart)."""
    pytest.importorskip("onnxruntime_extensions", reason="the plugin op's CPU implementation")
    from runtime.backends.onnxruntime_backend import OrtBackend

    plugin = export_xs(tmp_path, patch_attention="plugin")
    out = tmp_path / "out"
    args = ["--onnx", str(fp32_onnx), "--plugin-onnx", str(plugin), "--synthetic", str(clean_dir)]
    args += ["--count", str(FRAMES), "--size", "32x32", "--calibrator", "max", "--output-dir", str(out)]
    assert calibration_main(args) == 0
    assert str(out / PLUGIN_QDQ) in capsys.readouterr().out
    decomposed, carried = (onnx.load(str(out / name)) for name in ("model_qdq.onnx", PLUGIN_QDQ))
    assert any(node.op_type == "DSRIR_PatchAttention" for node in carried.graph.node)
    assert int8_conv_weights(carried) == int8_conv_weights(decomposed)
    assert len(int8_conv_weights(carried)) == qdq_structure(decomposed).int8_convs
    scales = {n.name.replace(".", "_"): n for n in decomposed.graph.initializer if n.name.endswith(".weight/scale")}
    assert scales and all(
        np.array_equal(onnx.numpy_helper.to_array(init), onnx.numpy_helper.to_array(scales[name]))
        for init in carried.graph.initializer
        if (name := init.name.replace(".", "_")) in scales
    )
    frame = np.random.default_rng(3).random((1, 3, 32, 32), np.float32)

    def errors() -> tuple[float, float, float]:
        """Mean |decomposed - plugin| and each Q/DQ graph's mean |error| against the FP32 graph."""
        fp32 = OrtBackend(fp32_onnx).infer(frame)
        ours, carried = (OrtBackend(out / n, exact_qdq=True).infer(frame) for n in ("model_qdq.onnx", PLUGIN_QDQ))
        return (
            float(np.abs(ours - carried).mean()),
            float(np.abs(ours - fp32).mean()),
            float(np.abs(carried - fp32).mean()),
        )

    apart, ours, carried = errors()  # FP16 graphs: the plugin computes patch attention in FP32, the graph in FP16
    assert carried < 1.25 * ours, (apart, ours, carried)
    assert calibration_main([*args, "--target-trt", "8.6"]) == 0  # FP32 graphs, the ranges reused
    apart, ours, carried = errors()
    assert apart < 0.3 * ours and carried < 1.25 * ours, (apart, ours, carried)


def test_cli_refuses_a_plugin_flavour_of_other_weights_before_calibrating(
    fp32_onnx: Path, clean_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = export_xs(tmp_path, seed=1, patch_attention="plugin")
    out = tmp_path / "out"
    args = ["--onnx", str(fp32_onnx), "--plugin-onnx", str(other), "--synthetic", str(clean_dir), "--size", "32x32"]
    assert calibration_main([*args, "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --plugin-onnx {other}: convolution ") and "other weights" in err
    assert "\n" not in err and not out.exists()
    assert calibration_main([*args[:2], "--plugin-onnx", str(fp32_onnx), *args[4:]]) == 2
    assert "not the plugin flavour" in capsys.readouterr().err
    inside = clean_dir / "calib"
    assert calibration_main([*args[:2], *args[4:], "--output-dir", str(inside)]) == 2
    assert "an output may not lie inside an input" in capsys.readouterr().err and not inside.exists()


def test_cli_bad_size_is_one_line(fp32_onnx: Path, clean_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--onnx", str(fp32_onnx), "--synthetic", str(clean_dir), "--size", "36x30"]
    assert calibration_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --size 36x30: width and height must be multiples of 8") and "\n" not in err


def test_crops_are_aligned_seeded_windows_of_the_deployment_size_frames(clean_dir: Path) -> None:
    size, crop = (64, 48), (24, 16)
    cropped = build_calibration_set("synthetic", str(clean_dir), 9, size, seed=3, crop=crop)
    assert cropped.crop == crop and cropped.frame_size == crop
    positions = [frame.at for frame in cropped.plan if frame.at is not None]
    assert len(positions) == 9
    for x, y in positions:
        assert x % CROP_ALIGN == 0 and y % CROP_ALIGN == 0
        assert 0 <= x <= size[0] - crop[0] and 0 <= y <= size[1] - crop[1]
    assert len(set(positions)) > 1
    again = build_calibration_set("synthetic", str(clean_dir), 9, size, seed=3, crop=crop)
    assert [f.at for f in again.plan] == positions and again.manifest_sha256 == cropped.manifest_sha256
    other_seed = build_calibration_set("synthetic", str(clean_dir), 9, size, seed=4, crop=crop)
    assert [f.at for f in other_seed.plan] != positions
    # The same frames as without a crop (degraded at the deployment size), cut to the window.
    whole = build_calibration_set("synthetic", str(clean_dir), 9, size, seed=3)
    for frame, full, (x, y) in zip(cropped, whole, positions):
        assert frame.shape == (1, 3, crop[1], crop[0])
        np.testing.assert_array_equal(frame, full[:, :, y : y + crop[1], x : x + crop[0]])
    manifest = cropped.manifest()
    assert manifest["crop"] == [24, 16] and [f["at"] for f in manifest["frames"]] == [list(p) for p in positions]
    assert whole.manifest()["crop"] is None and all(f["at"] is None for f in whole.manifest()["frames"])


def test_crop_is_clamped_to_the_frame(clean_dir: Path) -> None:
    whole = build_calibration_set("synthetic", str(clean_dir), 3, SIZE, seed=0)
    covering = build_calibration_set("synthetic", str(clean_dir), 3, SIZE, seed=0, crop=(256, 256))
    assert covering.crop is None and covering.manifest_sha256 == whole.manifest_sha256
    strip = build_calibration_set("synthetic", str(clean_dir), 3, (64, 32), seed=0, crop=(16, 256))
    assert strip.crop == (16, 32) and all(f.at is not None and f.at[1] == 0 for f in strip.plan)
    assert {tuple(frame.shape) for frame in strip} == {(1, 3, 32, 16)}


def test_crop_settings_decide_ranges_reuse(clean_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = calibration_settings("max")
    sets = {
        crop: build_calibration_set("synthetic", str(clean_dir), 3, (64, 48), seed=0, crop=crop)
        for crop in (None, (16, 16), (24, 16))
    }
    assert len({dataset.manifest_sha256 for dataset in sets.values()}) == len(sets)
    path = tmp_path / "ranges.json"
    for made_with, dataset in sets.items():
        Ranges(
            "max", {"input": 1.0}, model_sha256="m", manifest_sha256=dataset.manifest_sha256, settings=settings
        ).save(path)
        for used_with, other in sets.items():
            reused = reusable(path, "m", other, settings)
            assert (reused is not None) == (used_with == made_with), (made_with, used_with)
    assert "made with another calibration set" in capsys.readouterr().out


def test_cli_calibrates_on_crops_and_recalibrates_without(
    fp32_onnx: Path, clean_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["--onnx", str(fp32_onnx), "--synthetic", str(clean_dir), "--count", "2", "--size", "48x32"]
    args += ["--calibrator", "max", "--output-dir", str(out)]
    assert calibration_main([*args, "--crop", "16x16"]) == 0
    assert "48x32, each cropped to 16x16 at a random place" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["crop"] == [16, 16] and all(frame["at"] is not None for frame in manifest["frames"])
    assert calibration_main([*args, "--crop", "none"]) == 0
    printed = capsys.readouterr().out
    assert "recalibrating: " in printed and "made with another calibration set" in printed
    assert json.loads((out / "manifest.json").read_text())["crop"] is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("20x16", "--crop 20x16: width and height must be multiples of 8, e.g. 24x16"),
        ("256", "--crop '256': expected WIDTHxHEIGHT such as 256x256, or none for whole frames"),
        ("0x8", "--crop '0x8': expected WIDTHxHEIGHT"),
    ],
)
def test_cli_bad_crop_is_one_line(
    fp32_onnx: Path, clean_dir: Path, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert calibration_main(["--onnx", str(fp32_onnx), "--synthetic", str(clean_dir), "--crop", value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err
    assert parse_crop("none") is None and parse_crop("256X128") == (256, 128)


def test_cli_skips_and_names_an_unreadable_photo_and_strict_stops(
    fp32_onnx: Path, clean_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One corrupt photo used to end the whole calibration (exit 2, later photos never used)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for source in sorted(clean_dir.iterdir())[:2]:
        (photos / source.name).write_bytes(source.read_bytes())
    (photos / "zz_broken.png").write_bytes(b"definitely not a png")
    out = tmp_path / "out"
    args = ["--onnx", str(fp32_onnx), "--synthetic", str(photos), "--count", "3", "--size", "32x32", "--crop", "none"]
    assert calibration_main([*args, "--calibrator", "max", "--output-dir", str(out)]) == 1
    captured = capsys.readouterr()
    assert "skipped: " in captured.err and "zz_broken.png" in captured.err
    assert "skipped 1 unreadable image(s)" in captured.out and (out / "ranges.json").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["skipped"]) == 1 and all("zz_broken" not in s["path"] for s in manifest["sources"])
    assert calibration_main([*args, "--strict", "--output-dir", str(tmp_path / "strict")]) == 2
    assert "zz_broken.png" in capsys.readouterr().err
    assert not (tmp_path / "strict" / "ranges.json").exists()
