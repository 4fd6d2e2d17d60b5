"""DSRIR architecture, presets, and the inference wrapper."""

from dsrir.model.arch import DSRIR
from dsrir.model.config import PRESETS, DSRIRConfig, get_preset
from dsrir.model.restorer import Restorer

__all__ = ["DSRIR", "DSRIRConfig", "PRESETS", "Restorer", "get_preset"]
