"""``hatrac-client``: a transfer command line for any Hatrac server.

It speaks only HTTP (``requests``) and imports nothing of the server, so it
works against upstream Hatrac deployments too. The parts:

* :mod:`.settings`  the user's config directory: named remotes, stored credentials;
* :mod:`.locations` ``REMOTE:/path`` and URLs, parsed into :class:`RemotePath`;
* :mod:`.http`      one :class:`Connection` per server: credentials, retries, errors;
* :mod:`.hashing`   digests of local files and file slices streamed as bodies;
* :mod:`.transfer`  put (single PUT or a parallel, resumable upload job) and get
  (resumable with ``Range``, verified);
* :mod:`.trees`     recursive put/get and sync between a directory and a namespace;
* :mod:`.output`    progress bars (only on a terminal), ``--json`` lines;
* :mod:`.commands`  the command implementations; :mod:`.cli` the argument parser.
"""

from .cli import main

__all__ = ["main"]
