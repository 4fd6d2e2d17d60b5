"""``train.ema.ModelEMA``: the warm-up that keeps a short fine-tune's average from being its starting weights."""

from __future__ import annotations

import pytest
import torch

from train.ema import ModelEMA


def one_weight(value: float) -> torch.nn.Module:
    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(value)
    return layer


def share_of_start(updates: int, decay: float, start_updates: int | None = 0) -> float:
    """What the starting weight (0) still makes up of the average after ``updates`` steps at weight 1."""
    model = one_weight(0.0)
    ema = ModelEMA(model, decay, updates=start_updates)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for _ in range(updates):
        ema.update(model)
    return 1.0 - float(ema.module.weight)


def test_a_short_run_averages_its_own_weights_not_the_ones_it_started_from() -> None:
    # BasicSR's fixed 0.999 would leave 0.999 ** 800 = 45 % of the start in an 800-step fine-tune's weight files.
    assert share_of_start(800, 0.999) < 1e-3
    assert share_of_start(800, 0.999, start_updates=None) == pytest.approx(0.999**800, rel=1e-3)


def test_the_warm_up_ends_at_the_configured_decay() -> None:
    ema = ModelEMA(one_weight(0.0), 0.999)
    assert ema.current_decay() == pytest.approx(2 / 11)  # TensorFlow's (1 + n) / (10 + n) at the first update
    ema.updates = 100
    assert ema.current_decay() == pytest.approx(102 / 111)
    ema.updates = 20_000
    assert ema.current_decay() == 0.999


def test_the_average_still_lags_the_weights() -> None:
    # The warm-up shortens the window, it does not remove it: 100 steps keep a share of the start.
    assert 0.0 < share_of_start(100, 0.999) < 0.05
