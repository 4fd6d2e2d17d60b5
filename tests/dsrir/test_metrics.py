"""Metrics: PSNR/SSIM values, BT.601 Y, the official Y-SSIM quirk, and protocol dispatch."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from dsrir import metrics
from dsrir.errors import DSRIRError


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A textured float image and a noisy copy, both in [0, 1]."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:48] / 8.0
    base = np.stack([0.5 + 0.3 * np.sin(xx + c) * np.cos(yy * (c + 1)) for c in range(3)], axis=-1)
    noisy = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1)
    return noisy, base


def test_psnr_of_constant_offset() -> None:
    target = np.full((16, 16, 3), 0.4)
    assert metrics.psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-9)


def test_uint8_and_float_inputs_agree(pair: tuple[np.ndarray, np.ndarray]) -> None:
    restored_u8, target_u8 = (np.round(image * 255).astype(np.uint8) for image in pair)
    restored_f, target_f = restored_u8 / 255.0, target_u8 / 255.0
    assert metrics.psnr(restored_u8, target_u8) == pytest.approx(metrics.psnr(restored_f, target_f))
    assert metrics.ssim(restored_u8, target_u8) == pytest.approx(metrics.ssim(restored_f, target_f))
    assert metrics.psnr(restored_u8, target_f, y_channel=True) == pytest.approx(
        metrics.psnr(restored_f, target_f, y_channel=True)
    )


def test_y_of_white_and_black() -> None:
    assert metrics.rgb_to_y(np.ones((2, 2, 3))) == pytest.approx(np.full((2, 2), 235 / 255))
    assert metrics.rgb_to_y(np.zeros((2, 2, 3), np.uint8)) == pytest.approx(np.full((2, 2), 16 / 255))
    assert metrics.rgb_to_y(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235 / 255)


def test_ssim_identical_is_one_and_noisy_is_less(pair: tuple[np.ndarray, np.ndarray]) -> None:
    noisy, clean = pair
    assert metrics.ssim(clean, clean) == pytest.approx(1.0)
    assert metrics.ssim(clean, clean, y_channel=True) == pytest.approx(1.0)
    assert metrics.ssim(noisy, clean) < 0.99


def test_official_y_quirk_is_column_wise_ssim(pair: tuple[np.ndarray, np.ndarray]) -> None:
    noisy, clean = pair
    y_noisy, y_clean = metrics.rgb_to_y(noisy), metrics.rgb_to_y(clean)
    quirk = metrics.ssim(noisy, clean, y_channel=True, official_y_quirk=True)
    proper = metrics.ssim(noisy, clean, y_channel=True)
    columns = np.mean([structural_similarity(y_clean[:, j], y_noisy[:, j], data_range=1) for j in range(48)])
    assert quirk == pytest.approx(columns, rel=1e-9)
    assert proper == pytest.approx(structural_similarity(y_clean, y_noisy, data_range=1), rel=1e-9)
    assert abs(quirk - proper) > 1e-3


def test_score_dispatch(pair: tuple[np.ndarray, np.ndarray]) -> None:
    noisy, clean = pair
    rgb = (metrics.psnr(noisy, clean), metrics.ssim(noisy, clean))
    paper_y = (metrics.psnr(noisy, clean, y_channel=True), metrics.ssim(noisy, clean, True, official_y_quirk=True))
    assert rgb != paper_y
    assert metrics.score(noisy, clean, "rain", "paper") == paper_y
    assert metrics.score(noisy, clean, "noise", "paper") == rgb
    assert metrics.score(noisy, clean, "haze", "paper") == rgb
    assert metrics.score(noisy, clean, "rain", "rgb") == rgb
    assert metrics.PROTOCOLS == ("paper", "rgb")


def test_unknown_protocol_names_the_flag(pair: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(DSRIRError, match="--protocol") as info:
        metrics.score(*pair, task="rain", protocol="matlab")
    assert "paper" in str(info.value) and "rgb" in str(info.value)


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(8, 8, 3\).*\(8, 9, 3\)"):
        metrics.psnr(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))
    with pytest.raises(ValueError, match="8, 9, 3"):
        metrics.ssim(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))
