"""Whether a W&B run can go online: credentials in the environment or a netrc entry.

Pure standard library, so the decision costs nothing and never touches the network (asking the
server would block on a machine without network, which is what the offline default avoids).
"""

from __future__ import annotations

import netrc
import os
import platform
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlsplit

#: the public W&B server; WANDB_BASE_URL names another one
DEFAULT_BASE_URL = "https://api.wandb.ai"

#: WANDB_MODE values that mean "write locally, upload later with ``wandb sync``"
OFFLINE_MODES = ("offline", "dryrun")


def _netrc_path(env: Mapping[str, str]) -> Path:
    """The netrc file W&B reads: $NETRC, else ~/.netrc, else ~/_netrc (wandb's own order)."""
    if env.get("NETRC"):
        return Path(env["NETRC"]).expanduser()
    unix, windows = Path("~/.netrc").expanduser(), Path("~/_netrc").expanduser()
    for path in (unix, windows):
        if path.exists():
            return path
    return windows if platform.system() == "Windows" else unix


def has_credentials(env: Optional[Mapping[str, str]] = None) -> bool:
    """True when W&B could log in without asking: WANDB_API_KEY, WANDB_IDENTITY_TOKEN_FILE, or a
    netrc entry with a password for the host of WANDB_BASE_URL (default api.wandb.ai)."""
    env = os.environ if env is None else env
    if env.get("WANDB_API_KEY") or env.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(env.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).netloc
    if not host:
        return False
    try:
        entry = netrc.netrc(str(_netrc_path(env))).authenticators(host)
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return bool(entry and entry[2])


def resolve_offline(offline: Optional[bool], env: Optional[Mapping[str, str]] = None) -> bool:
    """The effective offline switch of a logger.

    Args:
        offline: True / False as configured, or None for automatic.
    Returns:
        True when ``offline`` is True, when WANDB_MODE is 'offline'/'dryrun', or (automatic) when
        no credentials are available; False otherwise.
    """
    env = os.environ if env is None else env
    if offline is not None:
        return bool(offline) or env.get("WANDB_MODE", "").lower() in OFFLINE_MODES
    if env.get("WANDB_MODE", "").lower() in OFFLINE_MODES:
        return True
    return not has_credentials(env)
