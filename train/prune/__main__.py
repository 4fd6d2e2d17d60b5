"""``python -m train.prune``: see :mod:`train.prune.cli`."""

import sys

from train.prune.cli import main

sys.exit(main())
