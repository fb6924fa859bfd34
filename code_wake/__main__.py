"""``python -m code_wake``: the same as the ``code-wake`` command."""

import sys

from .cli import main

sys.exit(main())
