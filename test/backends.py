"""The backends every protocol test runs on, and the root ACLs of test services.

A plain module (not conftest.py) so that test modules can import it: several
directories have a conftest.py of their own, and ``from conftest import``
would pick whichever was imported first.
"""

DIRECTORY_BACKENDS = ["sqlite", "postgres"]
# (directory, storage) pairs every protocol test runs on
BACKENDS = [("sqlite", "filesystem"), ("postgres", "filesystem"), ("postgres", "amazons3")]
TEST_ROOT_ACLS = {"owner": ["admin"], "create": ["*"], "read": ["*"]}
