"""File-system helpers shared by the writers: the process umask and independent copies.

* Every output follows the umask (``tempfile.mkstemp``/``mkdtemp`` create 0600/0700 files and
  folders; the atomic writers chmod them to :func:`file_mode`/:func:`dir_mode` before the rename),
  so a group-shared project directory (``umask 002``) works.
* :func:`copy_file` makes a copy that shares nothing with its source (a reflink where the
  filesystem supports copy-on-write clones, else a byte copy): editing the source later never
  changes the copy, unlike a hard link.
"""

from __future__ import annotations

import fcntl
import os
import shutil

# ioctl(dst, FICLONE, src): clone a whole file (btrfs, XFS with reflink=1, bcachefs, overlayfs on those)
FICLONE = 0x40049409


def umask() -> int:
    """The process umask, read without changing it where Linux exposes it (thread safe)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new regular file under the current umask (what ``open(path, 'w')`` gives)."""
    return 0o666 & ~umask()


def dir_mode() -> int:
    """Mode of a new folder under the current umask (what ``os.mkdir`` gives)."""
    return 0o777 & ~umask()


def copy_file(src: str, dst: str) -> str:
    """Copy ``src`` to ``dst`` as an independent file; return ``'reflink'`` or ``'copy'``.

    The copy's mode follows the umask (not the source's), so a read-only input gives a normal
    output file.
    """
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
            return "reflink"
        except OSError:
            pass
    shutil.copyfile(src, dst)
    return "copy"
