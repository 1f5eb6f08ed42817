"""``python -m cnnwidgets``: the same commands as the ``cnnwidgets`` console script."""

import sys

from .cli import main

sys.exit(main())
