"""Turn a training checkpoint into the shipped weights: ``weights/NAME.safetensors`` and its ONNX export.

The ONNX lets the quick start run on ONNX Runtime with neither torch nor an export step, so it must always be
regenerated from the safetensors by this script (``tests/test_shipped_weights.py`` checks they agree).

    python scripts/ship_weights.py --checkpoint experiments/all_in_one/models/xs-cpu/model_best.pth \\
        --name dsrir-xs_all_in_one
    python scripts/ship_weights.py --name dsrir-xs_all_in_one      # re-export the ONNX of shipped weights
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from dsrir.atomic import write_text_atomic  # noqa: E402
from dsrir.checkpoint import load_model, save_safetensors  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402
from dsrir.digest import file_sha256  # noqa: E402
from dsrir.modes import DEFAULT_MODE, recorded_mode  # noqa: E402
from export.onnx.build import ExportOptions, export_checkpoint  # noqa: E402

WEIGHTS_DIR = REPO / "weights"
MAX_BYTES = 15 * 1024 * 1024  # what a git repository should carry per file


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="training checkpoint to ship (omit: re-export NAME)")
    parser.add_argument("--name", required=True, help="file stem under weights/, e.g. dsrir-xs_all_in_one")
    parser.add_argument("--note", default="", help="what changed since the previous weights (kept in the JSON)")
    args = parser.parse_args(argv)
    weights = WEIGHTS_DIR / f"{args.name}.safetensors"
    record_path = weights.with_suffix(".json")
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if args.checkpoint is not None:
        model, loaded = load_model(args.checkpoint)
        mode = recorded_mode(loaded.metadata) or DEFAULT_MODE
        extra = {"mode": mode, "source_sha256": file_sha256(args.checkpoint)}
        # "weights": ema, raw or blend (dsrir.checkpoint); "blend": a blend's inputs (train.blend); "degradations": the
        # synthetic set trained on, "clean_fraction": the share of its samples left clean (quality.py reads both)
        recorded = ("weights", "degradations", "clean_fraction", "blend")
        extra.update({key: str(loaded.metadata[key]) for key in recorded if loaded.metadata.get(key) is not None})
        position = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        WEIGHTS_DIR.mkdir(exist_ok=True)
        save_safetensors(weights, model, loaded.preset, extra)
        record.update(
            {
                "preset": loaded.preset,
                "mode": mode,
                "source_checkpoint": args.checkpoint.name,
                "source_sha256": extra["source_sha256"],
                "epoch": position.get("epoch"),
                "global_step": position.get("global_step"),
                "weights": extra.get("weights"),
                "degradations": extra.get("degradations"),
                "clean_fraction": loaded.metadata.get("clean_fraction"),
                "history": [*record.get("history", []), args.note] if args.note else record.get("history", []),
            }
        )
        record.pop("blend", None)  # the previous weights' inputs, if they were a blend
        if "blend" in extra:
            record["blend"] = json.loads(extra["blend"])  # train.blend's inputs: file, sha256, share, weights
    elif not weights.is_file():
        raise SystemExit(f"{weights}: not found; pass --checkpoint to create it")
    onnx_path, result = export_checkpoint(weights, weights.with_suffix(".onnx"), ExportOptions())
    record.update(
        {
            "safetensors_sha256": file_sha256(weights),
            "onnx_sha256": file_sha256(onnx_path),
            "onnx_parity_max_abs": result.parity.max_abs if result.parity else None,
        }
    )
    write_text_atomic(record_path, json.dumps(record, indent=2) + "\n")
    for path in (weights, onnx_path):
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SystemExit(f"{path}: {size / 2**20:.1f} MiB is over the 15 MiB limit for shipped files")
        print(f"{path.relative_to(REPO)}: {size / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
