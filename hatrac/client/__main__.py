"""``python -m hatrac.client``: the same as the ``hatrac-client`` command."""

import sys

from .cli import main

sys.exit(main())
