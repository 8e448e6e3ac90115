"""``python -m mrnn_sweep sweep sweep.toml``: the ``mrnn`` command."""

import sys

from ._cli import main

sys.exit(main())
