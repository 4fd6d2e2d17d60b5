"""The architecture matches the official release; presets, PatchAttention and the Restorer behave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dsrir.checkpoint import load_model, official_checkpoint, read_weights, save_pth, save_safetensors
from dsrir.errors import DSRIRError
from dsrir.model import DSRIR, PRESETS, DSRIRConfig, Restorer, get_preset
from dsrir.ops.patch_attention import PatchAttention
from tests.paths import FIXTURES

REFERENCE = FIXTURES / "dsrir_state_dict.tsv"


def reference_shapes() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in REFERENCE.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.split("\t")
        rows.append((key, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return rows


def test_paper_preset_has_official_parameter_count_and_keys() -> None:
    model = DSRIR(PRESETS["dsrir"])
    assert sum(p.numel() for p in model.parameters()) == 3_516_837
    mine = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert len(mine) == 316
    assert mine == reference_shapes()  # same names, shapes and order


def test_official_checkpoint_with_module_prefix_loads_strictly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = DSRIR()
    blob = {
        "epoch": 347,
        "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()},
        "optimizer": {},
    }
    torch.save(blob, tmp_path / "model_best.pth")
    model, weights = load_model(tmp_path / "model_best.pth")
    assert weights.preset == "dsrir"  # recognised by shapes: the official file records no preset
    assert weights.metadata["epoch"] == 347
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_project_checkpoints_round_trip_with_preset(tmp_path: Path, suffix: str) -> None:
    model = DSRIR(PRESETS["dsrir-xs"])
    path = tmp_path / f"w{suffix}"
    if suffix == ".pth":
        save_pth(path, official_checkpoint(model, "dsrir-xs", epoch=3))
    else:
        save_safetensors(path, model, "dsrir-xs")
    loaded, weights = load_model(path)
    assert weights.preset == "dsrir-xs" and weights.config == PRESETS["dsrir-xs"]
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        assert torch.equal(loaded.restore(x), model.eval().restore(x))


def test_custom_config_round_trips_without_preset(tmp_path: Path) -> None:
    config = DSRIRConfig(sn3_channels=48, sn3_groups=1)
    save_safetensors(tmp_path / "c.safetensors", DSRIR(config), None)
    assert read_weights(tmp_path / "c.safetensors").config == config


def test_bad_checkpoints_give_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DSRIRError, match="junk.pth: not a readable PyTorch checkpoint"):
        load_model(tmp_path / "junk.pth")
    with pytest.raises(DSRIRError, match="missing.pth: checkpoint not found"):
        load_model(tmp_path / "missing.pth")
    state = DSRIR(PRESETS["dsrir-xs"]).state_dict()
    state.pop("ebd.weight")
    torch.save({"epoch": 1, "state_dict": state, "optimizer": {}}, tmp_path / "partial.pth")
    with pytest.raises(DSRIRError, match="match no preset"):
        load_model(tmp_path / "partial.pth")
    save_safetensors(tmp_path / "shipped.safetensors", DSRIR(PRESETS["dsrir-xs"]), "dsrir-xs")
    with pytest.raises(DSRIRError, match="shipped.safetensors: .*raw weights are in .pth"):
        load_model(tmp_path / "shipped.safetensors", which="raw")


def test_unknown_preset_lists_choices() -> None:
    with pytest.raises(DSRIRError, match="dsrir-xs"):
        get_preset("nope")


def test_config_rejects_widths_not_divisible_by_reduction() -> None:
    with pytest.raises(DSRIRError, match="reduction"):
        DSRIRConfig(sn3_channels=60)


def adaptive_pool_patch_attention(module: PatchAttention, x: torch.Tensor) -> torch.Tensor:
    """The official formulation (AdaptiveAvgPool2d + view), kept here as the reference."""
    n, c, h, w = x.shape
    gh, gw = module.grid
    weights = module.conv_du(nn.AdaptiveAvgPool2d((gh, gw))(x)).unsqueeze(3).unsqueeze(-1)
    return (x.view(n, c, gh, h // gh, gw, w // gw) * weights).view(n, c, h, w)


@pytest.mark.parametrize("grid", [(8, 8), (4, 4), (2, 2), (1, 1)])
def test_reshape_patch_attention_equals_adaptive_pool(grid: tuple[int, int]) -> None:
    torch.manual_seed(1)
    module = PatchAttention(32, 8, grid)
    x = torch.randn(2, 32, 24, 40)
    skip = torch.randn_like(x)
    expected = adaptive_pool_patch_attention(module, x)
    torch.testing.assert_close(module(x), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(module(x, skip=skip), expected + skip, rtol=0, atol=1e-6)


def test_forward_returns_three_stages_with_variances() -> None:
    model = DSRIR(PRESETS["dsrir-xs"]).eval()
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        images, variances = model(x)
    assert len(images) == len(variances) == 3
    assert all(t.shape == x.shape for t in images + variances)


def test_preset_size_multiple_and_flops_order() -> None:
    assert all(config.size_multiple == 8 for config in PRESETS.values())
    params = [sum(p.numel() for p in DSRIR(PRESETS[n]).parameters()) for n in ("dsrir", "dsrir-s", "dsrir-xs")]
    assert params[0] > params[1] > params[2]


@pytest.fixture(scope="module")
def restorer() -> Restorer:
    torch.manual_seed(0)
    return Restorer(DSRIR(PRESETS["dsrir-xs"]))


@pytest.mark.parametrize(
    "shape,dtype",
    [
        ((61, 97, 3), np.uint8),
        ((61, 97), np.uint8),
        ((61, 97, 1), np.uint8),
        ((61, 97, 4), np.uint8),
        ((33, 20, 3), np.float32),
        ((5, 7, 3), np.uint16),
    ],
)
def test_restorer_keeps_size_layout_and_dtype(restorer: Restorer, shape: tuple[int, ...], dtype: type) -> None:
    rng = np.random.default_rng(0)
    if dtype == np.float32:
        image = rng.random(shape, dtype=np.float32)
    else:
        image = rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)
    out = restorer(image)
    assert out.shape == image.shape and out.dtype == image.dtype
    if len(shape) == 3 and shape[2] == 4:
        assert np.array_equal(out[..., 3], image[..., 3])  # alpha passes through untouched


def test_restorer_padding_matches_manual_pad_and_crop(restorer: Restorer) -> None:
    x = torch.rand(1, 3, 61, 97)
    padded = torch.nn.functional.pad(x, (0, 7, 0, 3), mode="reflect")
    with torch.no_grad():
        expected = restorer.model.restore(padded)[..., :61, :97]
    torch.testing.assert_close(restorer.restore_tensor(x), expected)


def test_tiled_restoration_is_close_to_whole_image() -> None:
    torch.manual_seed(0)
    model = DSRIR(PRESETS["dsrir-xs"])
    x = torch.rand(1, 3, 100, 140)
    whole = Restorer(model).restore_tensor(x)
    tiled = Restorer(model, tile=64, tile_overlap=16).restore_tensor(x)
    assert tiled.shape == whole.shape
    # patch attention pools per tile, so tiles differ slightly from the whole image; blending keeps it close
    assert (tiled - whole).abs().mean() < 0.05
    budgeted = Restorer(model, max_memory=560 * 10**6)  # the whole image fits in about 573 MB, tiles of 96 in 560
    plan = budgeted.plan((100, 140))
    assert plan is not None and plan.tile_hw == (96, 96) and plan.overlap == 24
    assert budgeted.restore_tensor(x).shape == x.shape
    assert Restorer(model, max_memory=580 * 10**6).plan((100, 140)) is None


def test_restorer_rejects_bad_layouts(restorer: Restorer) -> None:
    with pytest.raises(DSRIRError, match="image"):
        restorer(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(DSRIRError, match="dtype"):
        restorer(np.zeros((4, 4, 3), np.int64))
