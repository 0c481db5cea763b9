"""``python -m fsctl ARGS``: runs the installed fsctl binary with ARGS."""

from __future__ import annotations

import os
import subprocess
import sys

from ._find_fsctl import find_fsctl_bin


def main() -> None:
    fsctl = find_fsctl_bin()
    if sys.platform == "win32":
        sys.exit(subprocess.run([fsctl, *sys.argv[1:]], check=False).returncode)
    os.execvp(fsctl, [fsctl, *sys.argv[1:]])


if __name__ == "__main__":
    main()
