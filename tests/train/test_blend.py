"""``python -m train.blend``: the share-weighted average of one network's checkpoints, and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from dsrir.checkpoint import load_model, official_checkpoint, read_weights, save_pth, save_safetensors
from dsrir.data.degradations import parse_degradations
from dsrir.digest import file_sha256
from dsrir.errors import DSRIRError
from dsrir.model import DSRIR, PRESETS
from train.blend import main


def saved_checkpoint(path: Path, seed: int, preset: str = "dsrir-xs", **extra: Any) -> dict[str, torch.Tensor]:
    """A training-style checkpoint whose EMA and raw weights differ (raw = EMA + 1), so which one is read shows."""
    torch.manual_seed(seed)
    model = DSRIR(PRESETS[preset])
    checkpoint = official_checkpoint(model, preset, epoch=3, mode="all_in_one", **extra)
    checkpoint["state_dict_ema"] = {k: v.clone() for k, v in checkpoint["state_dict"].items()}
    checkpoint["state_dict"] = {k: v + 1 if v.is_floating_point() else v for k, v in checkpoint["state_dict"].items()}
    save_pth(path, checkpoint)
    return checkpoint["state_dict_ema"]


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def test_the_blend_is_the_share_weighted_average_of_the_ema_weights(tmp_path: Path) -> None:
    first = saved_checkpoint(tmp_path / "a.pth", seed=0, degradations="families rain-v3 haze-v3", clean_fraction=0.1)
    second = saved_checkpoint(tmp_path / "b.pth", seed=1)  # records no degradations: v3-era weights
    output = tmp_path / "out" / "blend.pth"
    args = ["--checkpoints", str(tmp_path / "a.pth"), str(tmp_path / "b.pth"), "--shares", "0.25", "0.75"]
    assert main([*args, "--output", str(output)]) == 0

    model, weights = load_model(output)
    for name, tensor in model.state_dict().items():
        expected = (0.25 * first[name].double() + 0.75 * second[name].double()).to(tensor.dtype)
        assert torch.equal(tensor, expected), name
    assert weights.metadata["weights"] == "blend" and weights.metadata["mode"] == "all_in_one"
    trained = parse_degradations([weights.metadata["degradations"]], tasks=None)
    assert {"rain-v3", "haze-v3", "rain-slanted", "noise-gaussian"} <= {family.label for family in trained.families}
    assert weights.metadata["clean_fraction"] == 0.1
    record = json.loads(weights.metadata["blend"])
    assert [(r["file"], r["share"], r["weights"]) for r in record] == [("a.pth", 0.25, "ema"), ("b.pth", 0.75, "ema")]
    assert record[0]["sha256"] == file_sha256(tmp_path / "a.pth")


def test_raw_weights_are_blended_when_asked_and_a_blend_has_no_raw_weights(tmp_path: Path) -> None:
    ema = saved_checkpoint(tmp_path / "a.pth", seed=0)
    save_safetensors(tmp_path / "shipped.safetensors", DSRIR(PRESETS["dsrir-xs"]), "dsrir-xs", {"mode": "all_in_one"})
    shipped = read_weights(tmp_path / "shipped.safetensors").state_dict
    inputs = ["--checkpoints", str(tmp_path / "a.pth"), str(tmp_path / "shipped.safetensors")]
    assert main([*inputs, "--weights", "raw", "--output", str(tmp_path / "raw.pth")]) == 0  # default: equal shares
    blended = read_weights(tmp_path / "raw.pth").state_dict
    name = next(n for n, t in ema.items() if t.is_floating_point())
    expected = (0.5 * (ema[name] + 1).double() + 0.5 * shipped[name].double()).to(ema[name].dtype)
    assert torch.equal(blended[name], expected)
    record = json.loads(read_weights(tmp_path / "raw.pth").metadata["blend"])
    assert [r["weights"] for r in record] == ["raw", "shipped"]
    with pytest.raises(DSRIRError, match="holds no raw weights"):
        read_weights(tmp_path / "raw.pth", "raw")


@pytest.mark.parametrize(
    ("shares", "words"),
    [
        (["0.5", "0.6"], "sum to 1.1, expected 1"),
        (["1.5", "-0.5"], "each share must lie from 0 to 1"),
        (["1"], "one per checkpoint"),
    ],
)
def test_bad_shares_are_one_line_errors_before_any_work(
    shares: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = ["--checkpoints", str(tmp_path / "a.pth"), str(tmp_path / "b.pth")]  # neither exists: not read yet
    assert main([*inputs, "--shares", *shares, "--output", str(tmp_path / "out.pth")]) == 2
    assert words in one_error_line(capsys)


def test_the_output_may_not_be_an_input_and_other_networks_do_not_blend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved_checkpoint(tmp_path / "a.pth", seed=0)
    saved_checkpoint(tmp_path / "b.pth", seed=1)
    before = file_sha256(tmp_path / "a.pth")
    inputs = ["--checkpoints", str(tmp_path / "a.pth"), str(tmp_path / "b.pth")]
    assert main([*inputs, "--output", str(tmp_path / "a.pth")]) == 2
    assert "an output may not overwrite an input" in one_error_line(capsys)
    assert file_sha256(tmp_path / "a.pth") == before

    saved_checkpoint(tmp_path / "s.pth", seed=2, preset="dsrir-s")
    other = ["--checkpoints", str(tmp_path / "a.pth"), str(tmp_path / "s.pth")]
    assert main([*other, "--output", str(tmp_path / "out.pth")]) == 2
    assert "s.pth: a different architecture from" in one_error_line(capsys)
    assert not (tmp_path / "out.pth").exists()
