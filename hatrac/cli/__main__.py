"""``python -m hatrac.cli``: the admin command without its console script."""

from . import main

raise SystemExit(main())
