"""DSRIR Edge: the DSRIR all-in-one restoration network from training to edge deployment."""

__version__ = "0.1.0"
