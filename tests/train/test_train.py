"""Real training steps on a tiny synthetic set: checkpoints, validation, exact resume, torchrun."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import pytest
import torch

from dsrir.checkpoint import load_model
from dsrir.data.degradations import FAMILIES
from dsrir.data.train_set import SyntheticTrainSet
from dsrir.evaluate import average, evaluate_sets
from dsrir.imageio import list_images
from dsrir.model import DSRIR, PRESETS
from dsrir.model.restorer import Restorer
from tests.paths import REPO, SHIPPED_CHECKPOINT
from train.cli import build_parser, config_from_args, main
from train.data import build_data
from train.distributed import DistContext
from train.sampler import EpochSampler
from train.schedule import lr_factor, progressive_stage
from train.trainer import Trainer


def tiny_args(clean_dir: Path, save_dir: Path, session: str, **overrides: object) -> list[str]:
    options: dict[str, object] = {
        "--synthetic": clean_dir,
        "--preset": "dsrir-xs",
        "--epochs": 1,
        "--epoch-chg": 1,
        "--patch-size": 32,
        "--batch-size": 2,
        "--samples-per-epoch": 4,
        "--workers": 0,
        "--val-epochs": 100,
        "--val-size": 32,
        "--val-fraction": 0.2,
        "--device": "cpu",
        "--output-dir": save_dir,
        "--session": session,
        "--seed": 7,
    }
    options.update({f"--{k.replace('_', '-')}": v for k, v in overrides.items()})
    argv: list[str] = ["--no-progress"]
    for key, value in options.items():
        argv += [key, *str(value).split()]
    return argv


def latest(save_dir: Path, session: str, mode: str = "all_in_one") -> dict:
    return torch.load(save_dir / mode / "models" / session / "model_latest.pth", weights_only=True)


def test_schedule_warmup_cosine_and_progressive_stages() -> None:
    factors = [lr_factor(i, 3, 10, 0.005) for i in range(10)]
    assert factors[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert factors[-1] == pytest.approx(0.005)
    assert all(a >= b for a, b in zip(factors[2:], factors[3:]))
    stages = dict(epoch_chg=(135, 238, 314, 347), patch_sizes=(128, 160, 192, 256), batch_sizes=(16, 14, 12, 8))
    assert progressive_stage(1, **stages) == (128, 16)
    assert progressive_stage(135, **stages) == (128, 16)
    assert progressive_stage(136, **stages) == (160, 14)
    assert progressive_stage(400, **stages) == (256, 8)


def test_time_budget_stops_with_a_checkpoint_and_resumes(tmp_path: Path, clean_dir: Path) -> None:
    """--max-minutes bounds a run (a 10-minute GPU slot); --resume then continues from where it stopped."""
    common = dict(samples_per_epoch=8, epochs=1, epoch_chg=1)
    assert main(tiny_args(clean_dir, tmp_path, "slot", max_minutes=1e-6, **common)) == 0
    assert latest(tmp_path, "slot")["global_step"] == 1  # the budget is checked after every step
    assert main([*tiny_args(clean_dir, tmp_path, "slot", max_minutes=1e-6, **common), "--resume"]) == 0
    assert latest(tmp_path, "slot")["global_step"] == 2


@pytest.mark.parametrize("samples,epochs,total,interrupt", [(4, 1, 2, 1), (4, 2, 3, 1)])
def test_resume_reproduces_uninterrupted_run_exactly(
    tmp_path: Path, clean_dir: Path, samples: int, epochs: int, total: int, interrupt: int
) -> None:
    common = dict(samples_per_epoch=samples, epochs=epochs, epoch_chg=epochs)
    assert main(tiny_args(clean_dir, tmp_path, "straight", max_steps=total, **common)) == 0
    assert main(tiny_args(clean_dir, tmp_path, "resumed", max_steps=interrupt, **common)) == 0
    interrupted = latest(tmp_path, "resumed")
    assert interrupted["global_step"] == interrupt
    assert main([*tiny_args(clean_dir, tmp_path, "resumed", max_steps=total, **common), "--resume"]) == 0

    straight, resumed = latest(tmp_path, "straight"), latest(tmp_path, "resumed")
    assert straight["global_step"] == resumed["global_step"] == total
    assert (straight["epoch"], straight["batches_done"]) == (resumed["epoch"], resumed["batches_done"])
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    assert straight["scheduler"] == resumed["scheduler"]
    first = straight["optimizer"]["state"][0]
    assert torch.equal(first["exp_avg"], resumed["optimizer"]["state"][0]["exp_avg"])
    torch.manual_seed(7)
    initial = DSRIR(PRESETS["dsrir-xs"]).state_dict()
    assert any(not torch.equal(initial[k], v) for k, v in straight["state_dict"].items())  # training moved weights


def test_ema_resumes_bit_exactly_and_is_what_validation_and_weight_files_use(tmp_path: Path, clean_dir: Path) -> None:
    """2 steps, saved, resumed for 2 more: the EMA tensors equal those of 4 uninterrupted steps, bit for bit."""
    common = dict(samples_per_epoch=8, epochs=1, epoch_chg=1, ema_decay=0.9, mode="noise")  # one validation image
    assert main(tiny_args(clean_dir, tmp_path, "straight", max_steps=4, **common)) == 0
    assert main(tiny_args(clean_dir, tmp_path, "resumed", max_steps=2, **common)) == 0
    assert latest(tmp_path, "resumed", "noise")["global_step"] == 2
    assert main([*tiny_args(clean_dir, tmp_path, "resumed", max_steps=4, **common), "--resume"]) == 0

    straight, resumed = latest(tmp_path, "straight", "noise"), latest(tmp_path, "resumed", "noise")
    assert straight["global_step"] == resumed["global_step"] == 4 and straight["ema_decay"] == 0.9
    assert straight["ema_updates"] == resumed["ema_updates"] == 4  # the warm-up continues where it stopped
    assert set(straight["state_dict_ema"]) == set(straight["state_dict"])
    for key, value in straight["state_dict_ema"].items():
        assert torch.equal(value, resumed["state_dict_ema"][key]), key
    raw, ema = straight["state_dict"], straight["state_dict_ema"]
    assert any(v.is_floating_point() and not torch.equal(v, raw[k]) for k, v in ema.items())  # the average lags

    checkpoint = tmp_path / "noise" / "models" / "straight" / "model_latest.pth"
    model, weights = load_model(checkpoint)
    assert weights.metadata["weights"] == "ema"
    assert all(torch.equal(value, ema[key]) for key, value in model.state_dict().items())
    raw_model, raw_weights = load_model(checkpoint, which="raw")
    assert raw_weights.metadata["weights"] == "raw"
    assert all(torch.equal(value, raw[key]) for key, value in raw_model.state_dict().items())
    cfg = config_from_args(build_parser().parse_args(tiny_args(clean_dir, tmp_path, "straight", **common)))
    validation = build_data(cfg).validation
    results = evaluate_sets(Restorer(model), [validation], "paper", progress=False)
    raw_results = evaluate_sets(Restorer(raw_model), [validation], "paper", progress=False)
    log = tmp_path / "noise" / "results" / "straight" / "validation.jsonl"
    record = json.loads(log.read_text().splitlines()[-1])
    assert record["average_psnr"] == pytest.approx(average(results).psnr)  # the EMA decides the best checkpoint
    assert record["raw"]["average_psnr"] == pytest.approx(average(raw_results).psnr)  # the raw weights beside it
    assert record["raw"]["average_psnr"] != record["average_psnr"]

    assert main(tiny_args(clean_dir, tmp_path, "off", max_steps=1, ema_decay=0, mode="noise")) == 0
    off = latest(tmp_path, "off", "noise")
    assert "state_dict_ema" not in off and "ema_decay" not in off
    assert load_model(tmp_path / "noise" / "models" / "off" / "model_latest.pth")[1].metadata["weights"] == "raw"
    off_log = tmp_path / "noise" / "results" / "off" / "validation.jsonl"
    assert "raw" not in json.loads(off_log.read_text().splitlines()[-1])  # one set of weights: scored once


def test_degradation_flags_choose_what_synthetic_training_draws(
    tmp_path: Path, clean_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def data_of(**flags: object) -> SyntheticTrainSet:
        return build_data(
            config_from_args(build_parser().parse_args(tiny_args(clean_dir, tmp_path, "x", **flags)))
        ).train  # type: ignore[return-value]

    assert data_of().degradations.spec == " ".join(FAMILIES)
    assert data_of(degradations="v3").degradations.is_v3
    held_out = data_of(hold_out="rain-heavy haze-dense").degradations
    assert "rain-heavy" not in held_out.spec and "haze-dense" not in held_out.spec and "rain-light" in held_out.spec
    narrowed = data_of(degradations="families rain-slanted:tilt=35..45", hold_out="rain-light").degradations
    assert [f.label for f in narrowed.families_of("rain")] == ["rain-heavy", "rain-slanted:tilt=35..45"]
    assert [f.task for f in data_of(mode="haze").degradations.families] == ["haze"] * 3
    mixed = data_of(degradations="families rain-v3 haze-v3", clean_fraction="0.1")
    assert mixed.degradations.spec == " ".join([*FAMILIES, "rain-v3", "haze-v3"]) and mixed.clean_fraction == 0.1
    assert data_of().clean_fraction == 0.0

    for flags, message in (
        ({"hold_out": "fog"}, "--hold-out fog: unknown family"),
        ({"degradations": "rain-slanted:tilt=0..10"}, "outside its stated range"),
        ({"hold_out": "haze-light haze-dense haze-nonhomogeneous"}, "leave no family for haze"),
        ({"ema_decay": 1.0}, "--ema-decay 1: expected 0 (off)"),
        ({"clean_fraction": "1"}, "--clean-fraction: '1': expected a share from 0 up to (not including) 1"),
    ):
        with pytest.raises(SystemExit):
            main(tiny_args(clean_dir, tmp_path, "x", **flags))
        assert message in capsys.readouterr().err
    csv_args = [
        a
        for a in tiny_args(clean_dir, tmp_path, "x", hold_out="rain-heavy")
        if a not in ("--synthetic", str(clean_dir))
    ]
    with pytest.raises(SystemExit):
        main([*csv_args, "--train-dir", str(tmp_path)])
    assert "use them with --synthetic" in capsys.readouterr().err


def test_training_writes_checkpoints_validation_log_and_summary(
    tmp_path: Path, clean_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(tiny_args(clean_dir, tmp_path, "run", epochs=2, epoch_chg=2, val_epochs=1, clean_fraction=0.25)) == 0
    models = tmp_path / "all_in_one" / "models" / "run"
    assert sorted(p.name for p in models.iterdir()) == [
        "model_1.pth",
        "model_2.pth",
        "model_best.pth",
        "model_latest.pth",
    ]
    _, weights = load_model(models / "model_best.pth")  # official format, strict load
    assert weights.preset == "dsrir-xs" and weights.metadata["epoch"] in (1, 2)
    assert weights.metadata["clean_fraction"] == 0.25  # what quality.py and ship_weights.py read
    blob = latest(tmp_path, "run")
    assert set(blob) >= {"epoch", "state_dict", "optimizer", "preset", "scheduler", "rng", "state_dict_ema"}
    assert blob["degradations"] == " ".join(FAMILIES) and blob["ema_decay"] == 0.999 and blob["clean_fraction"] == 0.25
    assert blob["epoch"] == 2 and blob["global_step"] == 4
    records = [json.loads(line) for line in (tmp_path / "all_in_one" / "results" / "run" / "validation.jsonl").open()]
    assert [r["epoch"] for r in records] == [1, 2]
    # --clean-fraction > 0: validation also scores the photos undegraded
    assert list(records[0]["tasks"]) == ["noise25", *(name for name in FAMILIES if name != "noise-gaussian"), "clean"]
    assert all(10 < r["average_psnr"] < 60 for r in records)
    out = capsys.readouterr().out
    assert "validation at epoch 2" in out and "best validation PSNR" in out
    assert re.search(r"^clean +\d+ +- +\d+\.\d+ +- +- +", out, re.MULTILINE)  # no input score: it is the target
    restored = [scores["psnr"] for task, scores in records[-1]["tasks"].items() if task != "clean"]
    assert records[-1]["average_psnr"] == pytest.approx(sum(restored) / len(restored))  # clean: shown, not averaged
    summary = json.loads((tmp_path / "all_in_one" / "results" / "run" / "train_summary.json").read_text())
    assert summary["epochs completed"] == "2/2"


def test_signal_stops_after_the_step_and_keeps_position(tmp_path: Path, clean_dir: Path) -> None:
    cfg = config_from_args(build_parser().parse_args(tiny_args(clean_dir, tmp_path, "sig", samples_per_epoch=8)))
    trainer = Trainer(cfg, DistContext(0, 1, torch.device("cpu")))
    real_step = trainer._step

    def step_then_signal(batch: dict) -> dict:
        terms = real_step(batch)
        os.kill(os.getpid(), signal.SIGTERM)  # the real handler, as `kill` would
        return terms

    trainer._step = step_then_signal  # type: ignore[method-assign]
    summary = trainer.run()
    assert summary.stopped_early and summary.global_step == 1 and summary.epochs_completed == 0
    state = latest(tmp_path, "sig")
    assert (state["epoch"], state["batches_done"]) == (0, 1)


def test_ctrl_c_to_the_process_group_with_data_workers_saves_and_exits(tmp_path: Path, clean_dir: Path) -> None:
    """A terminal's Ctrl-C reaches the data workers too; they must leave the stop to the main process."""
    argv = tiny_args(clean_dir, tmp_path, "ctrlc", samples_per_epoch=400, workers=1)
    process = subprocess.Popen(
        [sys.executable, "-m", "train", *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives it
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert process.stdout is not None
    for line in process.stdout:  # printed once the signal handlers are installed
        if line.startswith("training dsrir-xs"):
            break
    checkpoint = tmp_path / "all_in_one" / "models" / "ctrlc" / "model_latest.pth"
    os.killpg(process.pid, signal.SIGINT)
    try:
        output = process.communicate(timeout=120)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("training hung after Ctrl-C")
    assert process.returncode == 0, output
    assert checkpoint.is_file() and latest(tmp_path, "ctrlc")["global_step"] >= 1


def test_data_workers_start_after_opencv_used_its_threads(tmp_path: Path, clean_dir: Path) -> None:
    """Workers forked after the trainer used OpenCV's thread pool (as validation does) hung in cv2.setNumThreads."""
    argv = tiny_args(clean_dir, tmp_path, "forked", samples_per_epoch=4, epochs=2, epoch_chg=2, workers=1)
    code = (
        "import cv2, numpy, sys; cv2.setNumThreads(4); "
        "cv2.GaussianBlur(numpy.zeros((2048, 2048, 3), numpy.float32), (0, 0), 5); "  # starts the pool
        f"from train.cli import main; sys.exit(main({argv!r}))"
    )
    try:
        result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("training hung when its data worker started")
    assert result.returncode == 0, result.stderr
    assert latest(tmp_path, "forked")["global_step"] == 4


def test_bad_flags_give_one_line_errors(tmp_path: Path, clean_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(tiny_args(clean_dir, tmp_path, "x", epoch_chg="1 2")) == 2
    assert "--epoch-chg" in capsys.readouterr().err
    assert main(tiny_args(clean_dir, tmp_path, "x", batch_size=64)) == 2
    assert "--batch-size 64" in capsys.readouterr().err
    assert main([*tiny_args(clean_dir, tmp_path, "never"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(tiny_args(tmp_path / "missing", tmp_path, "x")) == 2
    assert "missing" in capsys.readouterr().err


def test_epoch_sampler_splits_ranks_like_one_big_batch_and_skips_on_resume() -> None:
    single = list(EpochSampler(16, seed=3, epoch=2, batch_size=4))
    ranks = [list(EpochSampler(16, seed=3, epoch=2, batch_size=2, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 8
    for step in range(4):  # each global batch of the 2 ranks is the single process's batch
        assert sorted(ranks[0][2 * step : 2 * step + 2] + ranks[1][2 * step : 2 * step + 2]) == sorted(
            single[4 * step : 4 * step + 4]
        )
    assert list(EpochSampler(16, 3, 2, 4, skip_batches=1)) == single[4:]
    assert list(EpochSampler(16, 3, 3, 4)) != single  # a new order every epoch
    assert len(EpochSampler(10, 0, 1, 4)) == 8  # incomplete last batch dropped


def test_torchrun_two_processes_train_with_gloo(tmp_path: Path, clean_dir: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    args = tiny_args(clean_dir, tmp_path, "ddp", samples_per_epoch=8, max_steps=2)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29517",
        "-m",
        "train",
        *args,
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert output.count("training dsrir-xs") == 1 and "2 process(es)" in output  # rank 0 alone logs
    state = latest(tmp_path, "ddp")
    assert (state["global_step"], state["epoch"], state["batches_done"]) == (2, 1, 0)  # 8 samples = 2 x 2 x 2
    assert not any(k.startswith("module.") for k in state["state_dict"])  # saved unwrapped, loads strictly
    load_model(tmp_path / "all_in_one" / "models" / "ddp" / "model_latest.pth")


def test_corrupt_photo_in_a_worker_gives_one_line_naming_it(
    tmp_path: Path, clean_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in clean_dir.iterdir():
        (photos / path.name).write_bytes(path.read_bytes())
    (photos / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    args = tiny_args(photos, tmp_path, "broken", workers=2, samples_per_epoch=14, batch_size=7, val_fraction=0.0)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and err[-1].endswith(
        "zz_broken.png: not a readable image (corrupt or unsupported format)"
    )


def make_dataset_tree(root: Path) -> None:
    """The official folder layout with a few small images (pairs share the clean image's content)."""
    import cv2

    from tests.conftest import natural_like_image

    def save(relative: str, image: object) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), image)

    for i in range(3):
        save(f"BSD400/{i}.png", natural_like_image(40, 48, seed=i))
        save(f"WED/{i}.png", natural_like_image(40, 48, seed=20 + i))
        clean = natural_like_image(40, 48, seed=10 + i)
        save(f"Rain100L/train/gt/norain-{i}.png", clean)
        save(f"Rain100L/train/rainy/rain-{i}.png", (clean * 0.8 + 50).astype("uint8"))
        save(f"Reside/train/gt/{i}.png", clean)
        save(f"Reside/train/hazy/{i}_0.9_0.1.png", (clean * 0.5 + 110).astype("uint8"))


def test_csv_training_from_make_csv_and_resume_from_an_official_checkpoint(tmp_path: Path) -> None:
    from dsrir.data.make_csv import main as make_csv_main

    root, csv = tmp_path / "data", tmp_path / "train_all_in_one.csv"
    make_dataset_tree(root)
    assert make_csv_main(["--train-dir", str(root), "--output", str(csv), "--rain-repeat", "2"]) == 0
    base = tiny_args(clean_dir=root, save_dir=tmp_path, session="csv", val_epochs=1, val_fraction=0.25)
    base = base[: base.index("--synthetic")] + base[base.index("--synthetic") + 2 :]
    assert main([*base, "--train-dir", str(root), "--train-csv", str(csv), "--max-steps", "2"]) == 0
    records = (tmp_path / "all_in_one" / "results" / "csv" / "validation.jsonl").read_text().splitlines()
    assert len(records) == 1 and json.loads(records[0])["tasks"]

    # An official checkpoint has no scheduler, position or preset: training continues at the next epoch.
    torch.manual_seed(0)
    weights = {f"module.{k}": v for k, v in DSRIR(PRESETS["dsrir-xs"]).state_dict().items()}  # DataParallel keys
    official = {"epoch": 1, "state_dict": weights, "optimizer": {}}
    torch.save(official, tmp_path / "official.pth")
    more = [*base, "--train-dir", str(root), "--train-csv", str(csv), "--session", "cont", "--epochs", "2"]
    more = [*more, "--epoch-chg", "2", "--resume", str(tmp_path / "official.pth")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(more) == 0
    assert not [w for w in caught if "lr_scheduler" in str(w.message)]  # replaying the schedule is no misuse to report
    state = latest(tmp_path, "cont")
    assert state["epoch"] == 2 and state["global_step"] == 2  # epoch 2 only: 4 samples / batch 2
    assert state["scheduler"]["last_epoch"] == 2


def test_init_fine_tunes_the_shipped_edge_weights_with_l1_and_guards_existing_runs(
    tmp_path: Path, clean_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--init starts a new run from a weights file (here the shipped pruned network: a custom architecture) with
    a fresh schedule; a tiny learning rate leaves the weights where they started, so the start is checked exactly."""
    shipped = SHIPPED_CHECKPOINT
    args = tiny_args(clean_dir, tmp_path, "ft", learning_rate=1e-12, min_lr=1e-13, loss="l1")
    assert main([*args, "--init", str(shipped)]) == 0
    assert "starting from the weights in" in capsys.readouterr().out
    blob = latest(tmp_path, "ft")
    assert blob["epoch"] == 1 and blob["global_step"] == 2 and blob["preset"] is None
    start, _ = load_model(shipped)
    tuned, weights = load_model(tmp_path / "all_in_one" / "models" / "ft" / "model_latest.pth")
    assert weights.config == start.config
    for name, tensor in start.state_dict().items():
        torch.testing.assert_close(tuned.state_dict()[name], tensor, atol=1e-6, rtol=0, msg=name)

    # Running the same command again would restart from the shipped weights and overwrite the run: refused.
    assert main([*args, "--init", str(shipped)]) == 2
    assert "--resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--init", str(shipped), "--resume"])
    assert "give only one" in capsys.readouterr().err


def test_task_mix_weighs_the_synthetic_tasks_and_rejects_what_it_cannot_weigh(
    tmp_path: Path, clean_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config_from_args(build_parser().parse_args(tiny_args(clean_dir, tmp_path, "mix", task_mix="haze=2 rain=1")))
    assert cfg.sampled_tasks == ("noise", "rain", "haze", "haze")
    assert config_from_args(build_parser().parse_args(tiny_args(clean_dir, tmp_path, "x"))).sampled_tasks == (
        "noise",
        "rain",
        "haze",
    )
    assert build_data(cfg).train.tasks == cfg.sampled_tasks  # type: ignore[attr-defined]
    photos = list_images(clean_dir) * 40
    drawn = Counter(SyntheticTrainSet(photos, cfg.sampled_tasks, 8, seed=0)[i]["task"] for i in range(240))
    assert 1.5 < drawn["haze"] / drawn["noise"] < 2.7 and 0.6 < drawn["rain"] / drawn["noise"] < 1.6

    # A family weight weighs the family within its task, not the task; it must be among the drawn families.
    args = tiny_args(clean_dir, tmp_path, "fam", task_mix="haze=2 haze-v3=3")
    family_cfg = config_from_args(build_parser().parse_args([*args, "--degradations", "families", "haze-v3"]))
    assert family_cfg.sampled_tasks == ("noise", "rain", "haze", "haze")
    assert family_cfg.family_mix == {"haze-v3": 3} and family_cfg.degradation_set.draw_weights == (("haze-v3", 3),)
    assert "haze-v3 x3" in build_data(family_cfg).description
    with pytest.raises(SystemExit):
        main(tiny_args(clean_dir, tmp_path, "x", task_mix="rain-v3=2"))  # not drawn: the default is the families
    assert "--task-mix rain-v3: not among the degradations drawn" in capsys.readouterr().err

    for bad, message in (("haze=0", "TASK=N"), ("fog=2", "FAMILY=N"), ("haze=1.5", "TASK=N"), ("haze-v3=0", "N >= 1")):
        with pytest.raises(SystemExit):
            main(tiny_args(clean_dir, tmp_path, "x", task_mix=bad))
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(tiny_args(clean_dir, tmp_path, "x", task_mix="rain=2", mode="noise"))
    assert "not a task of --mode noise" in capsys.readouterr().err
    csv_args = [
        a for a in tiny_args(clean_dir, tmp_path, "x", task_mix="haze=2") if a not in ("--synthetic", str(clean_dir))
    ]
    with pytest.raises(SystemExit):
        main([*csv_args, "--train-dir", str(tmp_path)])
    assert "use it with --synthetic" in capsys.readouterr().err
