"""Where pip put the fsctl binary: the scripts directory of the environment, the user scheme,
or a ``--prefix``/``--target`` install beside this package."""

from __future__ import annotations

import os
import sys
import sysconfig


def find_fsctl_bin() -> str:
    """The path of the installed fsctl binary (FileNotFoundError when it is missing)."""
    exe = "fsctl.exe" if sys.platform == "win32" else "fsctl"
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [sysconfig.get_path("scripts")]
    if sys.version_info >= (3, 10):
        user = sysconfig.get_preferred_scheme("user")
    elif os.name == "nt":
        user = "nt_user"
    else:
        user = "posix_user"
    candidates.append(sysconfig.get_path("scripts", scheme=user))
    # pip install --target DIR: the binary lands in DIR/bin beside DIR/fsctl.
    candidates.append(os.path.join(os.path.dirname(here), "bin"))
    # pip install --prefix PREFIX: PREFIX/lib/pythonX.Y/site-packages/fsctl -> PREFIX/bin.
    candidates.append(os.path.join(here, *[os.pardir] * 4, "bin"))
    for directory in candidates:
        path = os.path.normpath(os.path.join(directory, exe))
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"the fsctl binary is not installed (looked in {candidates})"
    )
