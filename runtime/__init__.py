"""Real-time video runtime: sources, sinks and the restoration pipeline for edge devices.

Lean on purpose: numpy, OpenCV and onnxruntime only (no torch), so it installs on a Jetson as is.
"""

import os

# FFmpeg inside OpenCV logs every encoder it fails to open while a codec is being chosen (and every
# recoverable stream hiccup); the runtime reports what matters itself. Set the variable to see them.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")
