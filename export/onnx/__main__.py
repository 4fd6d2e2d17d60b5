"""``python -m export.onnx``: see :mod:`export.onnx.build`."""

import sys

from export.onnx.build import main

sys.exit(main())
