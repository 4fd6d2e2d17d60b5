"""A MODELLED Jetson latency table (FLOPs / GPU peak), to read before buying a device; not a measurement.

Peaks are dense GPU-only tensor-core rates derived from NVIDIA's headline sparse INT8 TOPS (halved for dense,
halved again for FP16), scaled by SM count and clock where NVIDIA quotes only the module total. Real networks
reach a fraction of peak (small channel counts, memory-bound elementwise layers, batch 1), so the table shows the
bound at 100 % and an assumed utilisation (``--utilisation``, 25 % by default). Measured rows, when someone has
them, go in a JSON list (``--measured``: device, network, precision, size, ms, how) and are printed beside it.

    python benchmarks/jetson_model.py [--checkpoint weights/*.safetensors] [--measured jetson_measured.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dsrir.atomic import write_text_atomic  # noqa: E402
from dsrir.checkpoint import load_model  # noqa: E402
from dsrir.cli import hidden_alias  # noqa: E402
from dsrir.cli_help import DefaultsHelpFormatter  # noqa: E402
from dsrir.model import DSRIR, PRESETS  # noqa: E402
from dsrir.model.cost import count_flops, count_params  # noqa: E402

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}
# name: (dense FP16 TFLOPS, dense INT8 TOPS, how it was derived)
DEVICES = {
    "Orin Nano 8GB": (10.0, 20.0, "40 sparse INT8 TOPS (GPU only, 625 MHz); JetPack 6.1 'Super' mode: x1.6"),
    "Orin NX 16GB": (15.0, 30.0, "AGX Orin GPU x 8/16 SMs x 918/1300 MHz (100 TOPS total includes 2 DLAs)"),
    "AGX Orin 64GB": (42.5, 85.0, "170 sparse INT8 TOPS of the GPU (275 TOPS total includes 2 DLAs)"),
}


def networks(weights: list[Path]) -> list[tuple[str, DSRIR]]:
    """The three presets plus any given checkpoints (pruned ones included)."""
    nets = [(name, DSRIR(config)) for name, config in PRESETS.items()]
    for path in weights:
        model, _ = load_model(path)
        nets.append((path.stem, model))
    return nets


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, nargs="*", default=[], help="checkpoints to add (e.g. pruned)")
    hidden_alias(parser, "--weights", "checkpoint", type=Path, nargs="*")
    parser.add_argument("--utilisation", type=float, default=0.25, help="assumed fraction of peak reached")
    parser.add_argument("--measured", type=Path, default=None, help="JSON list of measured Jetson rows to show")
    parser.add_argument("--output", type=Path, default=Path("jetson_model.json"), help="where to write the JSON")
    args = parser.parse_args(argv)
    rows = []
    for name, model in networks(args.checkpoint):
        flops = {size: count_flops(model, *hw) for size, hw in SIZES.items()}
        for device, (fp16, int8, _) in DEVICES.items():
            for precision, peak in (("fp16", fp16), ("int8", int8)):
                row = {"network": name, "params": count_params(model), "device": device, "precision": precision}
                for size, count in flops.items():
                    bound_ms = count / (peak * 1e12) * 1e3
                    row[f"{size}_gflops"] = round(count / 1e9, 1)
                    row[f"{size}_bound_ms"] = round(bound_ms, 1)
                    row[f"{size}_modelled_fps"] = round(1e3 * args.utilisation / bound_ms, 1)
                rows.append(row)
    print(f"MODELLED, not measured: FLOPs / peak, and fps at {args.utilisation:.0%} of peak\n")
    print(
        "| network | params | device | precision | GFLOPs 720p | 720p ms (at peak) | 720p fps (modelled) "
        "| GFLOPs 1080p | 1080p ms (at peak) | 1080p fps (modelled) |"
    )
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['network']} | {r['params'] / 1e6:.2f}M | {r['device']} | {r['precision']} | {r['720p_gflops']} | "
            f"{r['720p_bound_ms']} | {r['720p_modelled_fps']} | {r['1080p_gflops']} | {r['1080p_bound_ms']} | "
            f"{r['1080p_modelled_fps']} |"
        )
    print("\nPeaks (dense, GPU only):")
    for device, (fp16, int8, how) in DEVICES.items():
        print(f"  {device}: FP16 {fp16} TFLOPS, INT8 {int8} TOPS ({how})")
    measured = json.loads(args.measured.read_text()) if args.measured else []
    if measured:
        print("\nMeasured on a Jetson:")
        for row in measured:
            print(f"  {row['device']} {row['network']} {row['precision']} {row['size']}: {row['ms']} ms ({row['how']})")
    payload = {"utilisation": args.utilisation, "devices": DEVICES, "modelled": rows, "measured": measured}
    write_text_atomic(args.output, json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
