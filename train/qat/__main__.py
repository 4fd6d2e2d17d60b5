"""``python -m train.qat``: see :mod:`train.qat.cli`."""

import sys

from train.qat.cli import main

sys.exit(main())
