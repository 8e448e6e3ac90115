"""``python -m mrnn ...``: the same as the ``mrnn`` command (``mrnn_sweep``'s CLI)."""

import sys

from mrnn_sweep._cli import main

sys.exit(main())
