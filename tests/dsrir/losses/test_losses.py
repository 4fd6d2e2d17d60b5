"""Losses: values against hand computations, gradient flow, VGG19 layout/loading and the offline fallback."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import dsrir.losses.combined as combined
from dsrir.errors import DSRIRError
from dsrir.losses import (
    DSRIRLoss,
    PositiveContrastiveLoss,
    PSNRLoss,
    StageL1Loss,
    UncertaintyLoss,
    VGG19Features,
    build_loss,
    find_vgg19_weights,
    load_vgg19_features,
)

CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)


def _images(seed: int, n: int, requires_grad: bool = False) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(2, 3, 32, 32, generator=gen).requires_grad_(requires_grad) for _ in range(n)]


@pytest.fixture(scope="module")
def fake_vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights in torchvision's VGG19 format, with extra layers and classifier keys that must be ignored."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, value in VGG19Features().state_dict().items():
        state[key] = torch.randn(value.shape, generator=gen) * (0.05 if key.endswith("weight") else 0.01)
    state["features.30.weight"] = torch.zeros(512, 512, 3, 3)
    state["classifier.0.weight"] = torch.zeros(8, 4)
    state["classifier.0.bias"] = torch.zeros(8)
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    return path


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(combined, "_missing_weights_warned", False)
    return tmp_path


def test_psnr_loss_is_negative_psnr_of_known_mse() -> None:
    target = torch.zeros(2, 3, 8, 8)
    pred = target + 0.1  # MSE 0.01 -> PSNR 20 dB
    pred.requires_grad_(True)
    loss = PSNRLoss()(pred, target)
    assert loss.item() == pytest.approx(10 / math.log(10) * math.log(0.01 + 1e-8), rel=1e-6)
    assert loss.item() == pytest.approx(-20.0, abs=1e-5)
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_uncertainty_loss_with_zero_variance_is_l1_and_backpropagates() -> None:
    restored, target = _images(1, 2)
    restored.requires_grad_(True)
    variance = torch.zeros(2, 3, 32, 32, requires_grad=True)
    loss = UncertaintyLoss()(restored, target, variance)
    assert loss.item() == pytest.approx(F.l1_loss(restored, target).item(), rel=1e-6)
    loss.backward()
    assert restored.grad.abs().sum() > 0 and variance.grad.abs().sum() > 0


def test_vgg19_layout_matches_torchvision() -> None:
    model = VGG19Features()
    state = model.state_dict()
    assert set(state) == {f"features.{i}.{p}" for i in CONV_INDICES for p in ("weight", "bias")}
    assert state["features.0.weight"].shape == (64, 3, 3, 3)
    assert state["features.5.weight"].shape == (128, 64, 3, 3)
    assert state["features.19.weight"].shape == (512, 256, 3, 3)
    assert state["features.28.weight"].shape == (512, 512, 3, 3)
    assert len(model.features) == 30
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.train().training


def test_fake_torchvision_file_loads_and_gives_five_maps(fake_vgg_file: Path) -> None:
    path = find_vgg19_weights(fake_vgg_file)
    assert path == fake_vgg_file
    model = load_vgg19_features(path)
    saved = torch.load(fake_vgg_file, weights_only=True)
    assert torch.equal(model.features[28].weight, saved["features.28.weight"])
    maps = model(torch.rand(1, 3, 32, 32))
    assert [m.shape[1] for m in maps] == [64, 128, 256, 512, 512]
    assert [m.shape[-1] for m in maps] == [32, 16, 8, 4, 2]


def test_file_without_feature_keys_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "not_vgg.pth"
    torch.save({"classifier.0.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(DSRIRError, match="not_vgg.pth"):
        load_vgg19_features(path)


def test_missing_explicit_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "vgg19.pth"
    with pytest.raises(DSRIRError, match="nowhere"):
        find_vgg19_weights(missing)


def test_hub_cache_is_found(empty_hub: Path, fake_vgg_file: Path) -> None:
    assert find_vgg19_weights(None) is None
    cached = empty_hub / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir()
    cached.write_bytes(fake_vgg_file.read_bytes())
    assert find_vgg19_weights(None) == cached


def test_contrastive_grads_reach_all_stages_but_not_constants(fake_vgg_file: Path) -> None:
    anchor, target, stage2, stage1, degraded = _images(2, 5, requires_grad=True)
    loss = PositiveContrastiveLoss(load_vgg19_features(fake_vgg_file))(anchor, target, stage2, stage1, degraded)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    for tensor in (anchor, stage2, stage1):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0
    assert target.grad is None and degraded.grad is None


def test_contrastive_value_matches_per_input_computation(fake_vgg_file: Path) -> None:
    features = load_vgg19_features(fake_vgg_file)
    anchor, target, stage2, stage1, degraded = _images(6, 5)
    a, t, s2, s1, d = (features(x) for x in (anchor, target, stage2, stage1, degraded))
    weights = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1)
    expected = sum(
        w
        * (F.l1_loss(a[i], t[i]) + 0.25 * F.l1_loss(a[i], s2[i]) + 0.125 * F.l1_loss(a[i], s1[i]))
        / (F.l1_loss(a[i], d[i]) + 1e-7)
        for i, w in enumerate(weights)
    )
    loss = PositiveContrastiveLoss(features)(anchor, target, stage2, stage1, degraded)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def _stage_inputs(seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor, torch.Tensor]:
    *restored, target, degraded = _images(seed, 5)
    restored = [r.requires_grad_(True) for r in restored]
    variances = [torch.full((2, 3, 32, 32), 0.1 * i, requires_grad=True) for i in range(3)]
    return restored, variances, target, degraded


def test_dsrir_loss_without_weights_warns_once_and_skips_pocl(empty_hub: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        criterion = DSRIRLoss()
        DSRIRLoss()
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "--vgg19-weights" in message and str(empty_hub) in message
    assert criterion.contrastive_enabled is False
    restored, variances, target, degraded = _stage_inputs(3)
    total, parts = criterion(restored, variances, target, degraded)
    assert parts["pocl"] == 0.0
    assert parts["total"] == pytest.approx(parts["unc"] + parts["psnr"], rel=1e-6)
    total.backward()
    assert all(r.grad.abs().sum() > 0 for r in restored)


def test_dsrir_loss_with_weights_sums_terms(fake_vgg_file: Path) -> None:
    criterion = DSRIRLoss(vgg19_weights=fake_vgg_file)
    assert criterion.contrastive_enabled is True
    restored, variances, target, degraded = _stage_inputs(4)
    total, parts = criterion(restored, variances, target, degraded)
    assert set(parts) == {"unc", "psnr", "pocl", "total"} and all(isinstance(v, float) for v in parts.values())
    assert parts["pocl"] > 0
    assert parts["total"] == pytest.approx(parts["unc"] + parts["psnr"] + 0.2 * parts["pocl"], rel=1e-5)
    assert total.item() == pytest.approx(parts["total"], rel=1e-6)
    expected_unc = sum(UncertaintyLoss()(r, target, v) for r, v in zip(restored, variances)).item() / 3
    assert parts["unc"] == pytest.approx(expected_unc, rel=1e-5)
    p = PSNRLoss()
    expected_psnr = p(restored[0], target) + 0.5 * (p(restored[1], target) + p(restored[2], target)) / 2
    assert parts["psnr"] == pytest.approx(expected_psnr.item(), rel=1e-5)
    total.backward()
    assert all(r.grad.abs().sum() > 0 for r in restored)
    assert all(v.grad.abs().sum() > 0 for v in variances)


def test_dsrir_loss_under_bf16_autocast_is_float32(fake_vgg_file: Path) -> None:
    criterion = DSRIRLoss(vgg19_weights=fake_vgg_file)
    restored, variances, target, degraded = _stage_inputs(5)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        total, parts = criterion([r.bfloat16() for r in restored], variances, target.bfloat16(), degraded)
    assert total.dtype == torch.float32 and math.isfinite(parts["total"])
    total.backward()
    assert restored[0].grad is not None and restored[0].grad.abs().sum() > 0


def _gradient_per_error(criterion: torch.nn.Module, error: float) -> float:
    """Mean |d loss / d output| per unit of error for an image whose every pixel is off by about ``error``."""
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, 32, 32, generator=gen) * 0.5 + 0.25
    sign = torch.randint(0, 2, target.shape, generator=gen).float() * 2 - 1
    restored = [(target + error * sign).requires_grad_(True) for _ in range(3)]
    variances = [torch.zeros(1, 3, 32, 32, requires_grad=True) for _ in range(3)]
    total, _ = criterion(restored, variances, target, target)
    total.backward()
    return float(restored[0].grad.abs().mean())


def test_stage_l1_is_the_mean_l1_of_the_three_stages() -> None:
    restored, variances, target, degraded = _stage_inputs(5)
    total, parts = StageL1Loss()(restored, variances, target, degraded)
    expected = sum(F.l1_loss(r, target) for r in restored) / 3
    assert float(total) == pytest.approx(float(expected), rel=1e-6)
    assert parts == {"l1": pytest.approx(float(expected)), "total": pytest.approx(float(expected))}
    total.backward()
    assert all(r.grad.abs().sum() > 0 for r in restored)


def test_l1_pushes_a_hazy_sized_error_as_hard_as_a_noisy_one_where_the_paper_loss_does_not(empty_hub: Path) -> None:
    # The reason --loss l1 exists: RMSE 0.23 is a 12.8 dB (hazy) image, 0.03 a 30.5 dB (denoised) one.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no VGG19 here: the contrastive term is off, as in CPU training
        paper = build_loss("paper")
    hazy, noisy = _gradient_per_error(paper, 0.23), _gradient_per_error(paper, 0.03)
    assert hazy < noisy / 4  # log-MSE: gradient ~ 1/error
    l1 = build_loss("l1")
    assert _gradient_per_error(l1, 0.23) == pytest.approx(_gradient_per_error(l1, 0.03), rel=1e-6)


def test_build_loss_names_the_choices() -> None:
    with pytest.raises(ValueError, match="paper, l1"):
        build_loss("l2")
