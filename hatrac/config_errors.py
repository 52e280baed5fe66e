"""The errors a configuration can raise, below everything that checks one.

:mod:`hatrac.config` re-exports both, so ``from hatrac.config import
ConfigError`` keeps working; the modules that config itself calls on to
check a setting (:mod:`hatrac.extras`, :mod:`hatrac.auth.oidc`) import them
from here, so that no import circle runs through config.
"""

from __future__ import annotations


class ConfigError(Exception):
    """The configuration is unusable; the message names the field and the fix."""


class StartupError(ConfigError):
    """The configured database or storage cannot be used; the message says what to fix."""
