"""Which configuration files count: a file someone else could have written does not.

A configuration names the database events go to and which keys are secret,
so a file planted by another user could send a program's events, secrets
unfiltered, to that user's database. As git treats a repository owned by
someone else, ``./etc/code_wake.conf`` counts only when the current user owns
it and nobody else (group or others) can write it; the global file
(``/etc/code_wake.conf``) only when others cannot write it. A file that does
not count is ignored, with a warning on the ``code_wake`` logger saying why.
A file named by ``CODE_WAKE_CONFIG`` is trusted: the user named it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["trusted_global", "trusted_local"]

logger = logging.getLogger("code_wake")


def trusted_local(path: Path) -> bool:
    """True when the working directory's config file is the user's own and only theirs to write."""
    info = _stat(path)
    if info is None:
        return True  # cannot look: reading it reports the problem
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    if uid is not None and info.st_uid != uid:
        return _ignored(path, f"it is owned by uid {info.st_uid}, not by the current user (uid {uid})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return _ignored(path, f"others can write it (mode {stat.S_IMODE(info.st_mode):04o})")
    return True


def trusted_global(path: Path) -> bool:
    """True when nobody but its owner and group can write the global config file."""
    info = _stat(path)
    if info is None or not info.st_mode & stat.S_IWOTH:
        return True
    return _ignored(path, f"anyone can write it (mode {stat.S_IMODE(info.st_mode):04o})")


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def _ignored(path: Path, why: str) -> bool:
    logger.warning("code_wake: ignoring the config file %s: %s", path, why)
    return False
