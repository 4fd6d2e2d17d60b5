"""The shipped weights: present, small enough for git, recorded, and their ONNX export computes what they compute.

The quick start runs ``weights/*.onnx`` on ONNX Runtime without torch, so an ONNX file left behind by a weights
update would silently ship a different model: ``scripts/ship_weights.py`` regenerates it, this test catches a miss.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from dsrir.checkpoint import load_model
from dsrir.graph.metadata import read_metadata
from tests.paths import WEIGHTS

QUICK_START = "dsrir-xs-p50_all_in_one"
MAX_BYTES = 15 * 1024 * 1024
SHIPPED = sorted(path.stem for path in WEIGHTS.glob("*.safetensors"))


def test_the_quick_start_weights_are_shipped() -> None:
    assert QUICK_START in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_files_are_small_and_recorded(name: str) -> None:
    record = json.loads((WEIGHTS / f"{name}.json").read_text())
    for suffix in (".safetensors", ".onnx"):
        path = WEIGHTS / f"{name}{suffix}"
        assert path.stat().st_size <= MAX_BYTES, path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record[f"{suffix[1:]}_sha256"], path


@pytest.mark.parametrize("name", SHIPPED)
def test_the_record_says_what_the_weights_are_made_of(name: str) -> None:
    """A blend's record names its inputs (file, sha256, share), as the safetensors does: they are its provenance."""
    record = json.loads((WEIGHTS / f"{name}.json").read_text())
    _, loaded = load_model(WEIGHTS / f"{name}.safetensors")
    assert record.get("weights") == loaded.metadata.get("weights")
    if record.get("weights") == "blend":
        assert record["blend"] == json.loads(loaded.metadata["blend"])
        assert sum(part["share"] for part in record["blend"]) == pytest.approx(1.0)
        assert all(len(part["sha256"]) == 64 for part in record["blend"])


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_onnx_matches_the_weights(name: str) -> None:
    model, loaded = load_model(WEIGHTS / f"{name}.safetensors")
    session = ort.InferenceSession(str(WEIGHTS / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    metadata = read_metadata(onnx.load(str(WEIGHTS / f"{name}.onnx")))
    assert metadata.preset == (loaded.preset or "custom") and metadata.precision == "fp32"  # custom: pruned
    image = np.random.default_rng(0).random((1, 3, 40, 56), dtype=np.float32)
    with torch.no_grad():
        expected = model.restore(torch.from_numpy(image)).numpy()
    (restored,) = session.run(None, {session.get_inputs()[0].name: image})
    assert np.abs(restored - expected).max() < 1e-4
