"""train.prune: the split embedding, the budget search, pruned checkpoints and export, distillation, the CLI."""

from __future__ import annotations

import copy
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dsrir.checkpoint import load_model, official_checkpoint, save_pth, save_safetensors
from dsrir.cpuinfo import cpu_name
from dsrir.errors import DSRIRError
from dsrir.losses import DSRIRLoss
from dsrir.model import DSRIR, PRESETS, DSRIRConfig
from dsrir.model.arch import SplitEmbedding
from dsrir.model.cost import REFERENCE_SIZE, count_flops
from dsrir.ops.patch_attention import PatchAttention
from export.onnx.build import ExportOptions, build_onnx
from tests.conftest import natural_like_image
from train.prune.cli import main
from train.prune.distill import Distiller, DistillOptions
from train.prune.search import Budget, PruneOptions, SearchResult, search


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from a second thread, whose spin-waits cost seconds a call on busy shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def teacher() -> DSRIR:
    torch.manual_seed(0)
    return DSRIR(PRESETS["dsrir-xs"]).eval()


@pytest.fixture(scope="module")
def found(teacher: DSRIR) -> SearchResult:
    return search(teacher, Budget("flops", 0.5), PruneOptions())


def outputs(model: DSRIR, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        images, variances = model.eval()(x)
    return [*images, *variances]


def test_split_embedding_is_bit_identical_and_merges_back(teacher: DSRIR) -> None:
    split = copy.deepcopy(teacher)
    assert isinstance(split.ebd, nn.Conv2d)
    split.ebd = SplitEmbedding(split.ebd, split.split_sizes)
    x = torch.rand(2, 3, 32, 48)
    assert all(torch.equal(a, b) for a, b in zip(outputs(teacher, x), outputs(split, x)))
    assert torch.equal(split.ebd.merged().weight, teacher.ebd.weight)


def test_pruning_meets_the_flops_budget_with_aligned_widths(teacher: DSRIR, found: SearchResult) -> None:
    pruned = found.model
    achieved = count_flops(pruned, *REFERENCE_SIZE) / count_flops(teacher, *REFERENCE_SIZE)
    assert achieved == pytest.approx(found.fraction) and abs(achieved - 0.5) <= 0.025
    for name, _, cout in pruned.config.conv_channels:
        if cout != 3 and not name.endswith(("conv_du.0", "fr.0")):
            assert cout % 8 == 0, name
    for module in pruned.modules():  # bottlenecks follow the pruned width: C' -> C'/reduction
        if isinstance(module, PatchAttention):
            squeeze = module.conv_du[0]
            assert isinstance(squeeze, nn.Conv2d) and squeeze.out_channels == squeeze.in_channels // 8
    for height, width in ((8, 16), (32, 32), (40, 64)):
        got = outputs(pruned, torch.rand(1, 3, height, width))
        assert [tuple(t.shape) for t in got] == [(1, 3, height, width)] * 6


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_pruned_checkpoint_loads_by_config_alone(found: SearchResult, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"pruned{suffix}"
    if suffix == ".pth":
        save_pth(path, official_checkpoint(found.model, None, epoch=0))
    else:
        save_safetensors(path, found.model, None)
    loaded, weights = load_model(path)
    assert weights.config == found.model.config and weights.config.conv_channels
    x = torch.rand(1, 3, 32, 40)
    assert all(torch.equal(a, b) for a, b in zip(outputs(loaded, x), outputs(found.model, x)))


def test_unpruned_configs_serialise_as_before_and_bad_tables_fail() -> None:
    assert "conv_channels" not in PRESETS["dsrir"].to_dict()
    with pytest.raises(DSRIRError, match="conv_channels"):
        DSRIR(DSRIRConfig(conv_channels=(("ebd", 3, 8),)))


def test_pruned_model_exports_to_onnx_matching_pytorch(found: SearchResult) -> None:
    options = ExportOptions(patch_attention="plugin", simplify=False, check_size=(32, 48))
    result = build_onnx(found.model, "custom", "unknown", options)
    assert result.parity is not None and result.parity.max_abs <= 1e-4


def fixed_batch() -> dict[str, torch.Tensor]:
    clean = np.stack([natural_like_image(32, 32, seed) for seed in (1, 2)]).astype(np.float32) / 255
    target = torch.from_numpy(clean).permute(0, 3, 1, 2)
    noisy = (target + torch.randn(target.shape, generator=torch.Generator().manual_seed(0)) * 0.1).clamp(0, 1)
    return {"target": target, "degraded": noisy}


def test_distillation_steps_reduce_the_loss_and_sigint_stops(teacher: DSRIR, found: SearchResult) -> None:
    student = copy.deepcopy(found.model)
    options = DistillOptions(steps=3, learning_rate=1e-3, progress=False)
    distiller = Distiller(student, teacher, DSRIRLoss(), options, torch.device("cpu"))
    batch = fixed_batch()

    def loss() -> float:
        with torch.no_grad():
            return distiller.loss(batch["degraded"], batch["target"])[1]["total"]

    def interrupted_after_two() -> Iterator[dict[str, torch.Tensor]]:
        yield batch
        signal.raise_signal(signal.SIGINT)  # Ctrl-C during the second step
        while True:
            yield batch

    before = loss()
    result = distiller.run(interrupted_after_two())
    assert (result.steps_done, result.interrupted) == (2, True)
    assert loss() < before


def test_train_continues_a_pruned_checkpoint_keeping_its_architecture(
    found: SearchResult, clean_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A long fine-tune of a pruned network runs in python -m train (bounded, resumable); its checkpoints keep the
    pruned widths and record no preset name, which would describe a different network."""
    from train.cli import main as train_main

    pruned = tmp_path / "pruned.pth"
    save_pth(pruned, official_checkpoint(found.model, None, epoch=0, mode="all_in_one"))
    argv = ["--synthetic", str(clean_dir), "--resume", str(pruned), "--save-dir", str(tmp_path), "--session", "p"]
    argv += ["--epochs", "1", "--epoch-chg", "1", "--patch-size", "32", "--batch-size", "2", "--samples-per-epoch"]
    argv += ["2", "--workers", "0", "--val-epochs", "100", "--val-fraction", "0.2", "--device", "cpu", "--no-progress"]
    assert train_main(argv) == 0
    log = capsys.readouterr().out
    assert "training the checkpoint architecture on" in log
    assert f"device cpu ({cpu_name()}, " in log  # the log names the hardware its step times were measured on
    latest = tmp_path / "all_in_one" / "models" / "p" / "model_latest.pth"
    assert torch.load(latest, weights_only=True)["preset"] is None
    _, weights = load_model(latest)
    assert weights.config == found.model.config and weights.preset is None


def test_cli_prunes_fine_tunes_and_writes_checkpoint_and_summary(
    found: SearchResult,
    clean_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("train.prune.cli.search", lambda *_args, **_kw: copy.deepcopy(found))  # searched above
    checkpoint, output = tmp_path / "xs.pth", tmp_path / "out" / "xs50.safetensors"
    torch.manual_seed(0)
    save_pth(checkpoint, official_checkpoint(DSRIR(PRESETS["dsrir-xs"]), "dsrir-xs", epoch=1, mode="noise"))
    argv = ["--checkpoint", str(checkpoint), "--target-flops", "0.5", "--synthetic", str(clean_dir)]
    argv += ["--steps", "1", "--batch-size", "2", "--patch-size", "32", "--samples-per-epoch", "4"]
    argv += ["--val-fraction", "0.2", "--val-size", "32", "--workers", "0", "--no-progress", "--output", str(output)]
    assert main([*argv, "--loss", "l1"]) == 0
    assert "GFLOPs at 1280x720" in capsys.readouterr().out
    summary = json.loads(output.with_suffix(".json").read_text())
    assert summary["finetuning"]["steps"] == 1 and summary["pruned"]["validation_psnr"] is not None
    assert set(summary["finetuning"]["last_loss"]) == {"distill", "l1", "task", "total"}
    assert summary["pruned"]["params"] < summary["original"]["params"]
    model, weights = load_model(output)
    assert weights.metadata["mode"] == "noise" and model.config == found.model.config


@pytest.mark.parametrize("flag,value", [("--target-flops", "1.5"), ("--target-flops", "0"), ("--target-params", "-1")])
def test_targets_outside_zero_one_are_one_line_errors(
    flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--checkpoint", str(tmp_path / "none.pth"), flag, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {flag} {float(value)}: must be a fraction")
