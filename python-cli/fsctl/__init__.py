"""The fsctl command, installed by this wheel; ``find_fsctl_bin()`` says where it is."""

from ._find_fsctl import find_fsctl_bin

__all__ = ["find_fsctl_bin"]
