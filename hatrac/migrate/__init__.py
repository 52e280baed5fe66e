"""Online migration: copy a running Hatrac server into this one through its REST API.

For sites that cannot give database access (``hatrac migrate-from``, see
docs/migrating.md). :mod:`.source` reads the other server with nothing but
the public protocol; :mod:`.copier` writes what it finds into this service's
directory and storage, keeping every version id.
"""

from .copier import LIMITATIONS, Migration, Report
from .source import RemoteServer, SourceError

__all__ = ["LIMITATIONS", "Migration", "RemoteServer", "Report", "SourceError"]
