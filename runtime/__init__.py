"""Real-time video runtime: sources, sinks and the restoration pipeline for edge devices.

Lean on purpose: numpy, OpenCV and onnxruntime only (no torch), so it installs on a Jetson as is.
"""
