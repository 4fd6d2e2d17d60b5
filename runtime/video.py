"""``python -m runtime.video``: restore a video source in real time and write, show or stream the result.

One command from any source to any sink: the backend is picked from the model file, capture/inference/output run
on their own threads, a status line shows FPS and stage times, and Ctrl-C finalises the output file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dsrir.errors import DSRIRError, error_line
from runtime.backends import BACKENDS
from runtime.backends.trt_buffers import FIT_MODES

DEGRADATIONS = ("none", "noise", "rain", "haze")
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
NO_MODEL = "no --model given: pass an .onnx/.engine/.pth/.safetensors (shipped default weights come with issue 7)"
EXIT_CODES = {"done": 0, "interrupted": 130, "terminated": 143}
DEFAULT_FPS = 30.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runtime.video",
        description="Restore video with DSRIR in real time (TensorRT, ONNX Runtime or PyTorch).",
        epilog="Exit status: 0 done, 2 usage/input error, 1 other failure, 130 after Ctrl-C and 143 after SIGTERM "
        "(the output is finalised with the frames processed so far; a second Ctrl-C aborts at once).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    io = parser.add_argument_group("input and output")
    io.add_argument(
        "--input",
        default="demo",
        help="demo, camN or v4l2:///dev/videoN, csiN or csi://N, a video file or file://, rtsp:// or http(s)://, an "
        "image folder or glob, gst:PIPELINE",
    )
    io.add_argument("--output", default=None, help="file (.mp4/.avi), images folder, display://0, rtsp://, none")
    io.add_argument("--no-output", action="store_true", help="restore without writing anything (benchmarking)")
    io.add_argument("--input-width", type=int, default=None, help="camera/CSI capture width")
    io.add_argument("--input-height", type=int, default=None, help="camera/CSI capture height")
    io.add_argument("--input-rate", type=float, default=None, help="camera/CSI fps, or an image folder's nominal fps")
    io.add_argument("--input-loop", action="store_true", help="rewind files, the demo and image folders at the end")
    io.add_argument("--input-latency", type=int, default=None, help="RTSP jitter buffer in ms")
    io.add_argument("--reconnect", type=int, default=3, help="reconnection attempts for live sources")
    io.add_argument("--headless", action="store_true", help="never open a window (display:// becomes no output)")
    io.add_argument("--side-by-side", action="store_true", help="output = input | restored, side by side")
    io.add_argument("--degrade", choices=DEGRADATIONS, default="none", help="add synthetic degradation to the input")
    model = parser.add_argument_group("model")
    model.add_argument("--model", type=Path, default=None, help=".engine, .onnx, .pth or .safetensors")
    model.add_argument("--backend", choices=BACKENDS, default="auto", help="auto: from the model file's suffix")
    model.add_argument("--plugin-lib", type=Path, default=None, help="DSRIR TensorRT plugin library for the engine")
    model.add_argument("--fit", choices=FIT_MODES, default="error", help="frames larger than the engine's profile")
    run = parser.add_argument_group("run")
    run.add_argument("--max-frames", type=int, default=None, help="stop after this many input frames")
    run.add_argument("--warmup", type=int, default=3, help="frames run before timing starts")
    run.add_argument("--queue-size", type=int, default=4, help="frames each queue holds")
    run.add_argument("--stats", type=Path, default=None, help="write the run's statistics as JSON here")
    run.add_argument(
        "--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS, help="hide the status line"
    )
    return parser


def default_model() -> Path:
    """A shipped ``weights/*.safetensors``, if any; else a one-line error."""
    found = sorted(WEIGHTS_DIR.glob("*.safetensors")) if WEIGHTS_DIR.is_dir() else []
    if not found:
        raise DSRIRError(NO_MODEL)
    return found[0]


def degrader(kind: str, seed: int = 0) -> Callable[[np.ndarray], np.ndarray] | None:
    """A per-frame synthetic degradation with fixed strength (noise sigma 25, one rain and haze setting)."""
    if kind == "none":
        return None
    from dsrir.data.degrade import add_gaussian_noise, add_haze, add_rain

    rng = np.random.default_rng(seed)
    if kind == "noise":
        return lambda frame: add_gaussian_noise(frame, 25, rng)
    if kind == "rain":
        return lambda frame: add_rain(frame, rng, density=0.04, length=20.0, angle=80.0, weight=0.6)
    return lambda frame: add_haze(frame, rng, airlight=0.8, beta=0.1)


def _check(args: argparse.Namespace) -> None:
    for flag in ("max_frames", "queue_size", "input_width", "input_height"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise DSRIRError(f"--{flag.replace('_', '-')} {value}: expected a positive number")
    if args.warmup < 0 or args.reconnect < 0:
        raise DSRIRError("--warmup and --reconnect must be 0 or more")


def run(args: argparse.Namespace) -> int:
    from runtime.backends import open_backend
    from runtime.frames import FrameRunner
    from runtime.pipeline import Pipeline
    from runtime.sinks import open_sink, parse_output
    from runtime.sources import open_source, parse_input
    from runtime.stats import RunStats

    _check(args)
    model = args.model or default_model()
    source_spec = parse_input(args.input)
    sink_spec = parse_output("none" if args.no_output else args.output)
    backend = open_backend(model, args.backend, args.plugin_lib)
    stats = RunStats(warmup=args.warmup)
    stats.info.update(backend=backend.name, precision=backend.precision, model=str(model), input=args.input)
    try:
        source = open_source(
            source_spec,
            width=args.input_width,
            height=args.input_height,
            rate=args.input_rate,
            loop=args.input_loop,
            latency_ms=args.input_latency,
            reconnect=args.reconnect,
        )
        fps = float(getattr(source, "fps", None) or DEFAULT_FPS)
        print(f"{source.description} -> {backend.description}", file=sys.stderr)

        def sink_for(size: tuple[int, int]) -> object:
            sink = open_sink(sink_spec, fps, size, headless=args.headless)
            stats.info["output"] = sink.description
            return sink

        pipeline = Pipeline(
            source,
            FrameRunner(backend, args.fit),
            sink_for,  # type: ignore[arg-type]
            stats,
            queue_size=args.queue_size,
            max_frames=args.max_frames,
            side_by_side=args.side_by_side,
            degrade=degrader(args.degrade),
            status=getattr(args, "progress", True),
        )
        ended = pipeline.run()
    finally:
        backend.close()
    print(stats.table(), file=sys.stderr)
    if args.stats is not None:
        stats.write_json(args.stats)
    return EXIT_CODES[ended]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except DSRIRError as exc:
        print(f"error: {error_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a worker's failure, re-raised by the pipeline: one line, not a traceback
        print(f"error: {type(exc).__name__}: {error_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
