"""Put a finished folder in the place of another in one step, so a crash (an exception, a full
disk, ``kill -9``, a power cut after the metadata is written) leaves either the old folder or the
new one at the target, never a mix.

- A new or empty target: one ``rename(2)``.
- An existing target: the old folder's files that ``keep`` names (e.g. the user's own notes in a
  result folder) are first hard-linked into the new folder (copied where links fail), then the two
  folders are swapped with ``renameat2(RENAME_EXCHANGE)`` (Linux ≥ 3.15; tmpfs, ext4, xfs, btrfs)
  and the old one, now at the new folder's temporary name, is removed. Sub-folders to keep are
  renamed across after the swap (a crash there leaves them in the hidden old folder, not lost).
  Where the swap is not supported the old folder is renamed aside first: a crash between the two
  renames then leaves the target missing and the old result in ``.<name>.old.*`` beside it.
"""
from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["exchange", "replace_folder"]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Swap two existing paths atomically (``renameat2(RENAME_EXCHANGE)``). Returns False where
    the system or file system does not support it (then nothing changed); raises OSError otherwise."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(a), None, os.fspath(b))


def replace_folder(new: Path, target: Path, keep: Callable[[str], bool] = lambda name: False) -> None:
    """Make the finished folder ``new`` (on the same file system, e.g. a temporary sibling) be
    ``target``; entries of an existing ``target`` for which ``keep(name)`` is true stay in it.
    On an exception before the swap ``target`` is unchanged (``new`` is left to the caller)."""
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        os.replace(new, target)  # rename(2) replaces an empty folder too
        return
    kept_dirs = []
    for entry in os.scandir(target):
        if not keep(entry.name) or os.path.lexists(new / entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            kept_dirs.append(entry.name)
            continue
        try:
            os.link(entry.path, new / entry.name, follow_symlinks=False)
        except OSError:
            shutil.copy2(entry.path, new / entry.name, follow_symlinks=False)
    if exchange(new, target):
        old = trash = new
    else:
        trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        old = trash / "old"
        os.replace(target, old)  # the old result aside (still on disk under .<name>.old.*)
        try:
            os.replace(new, target)
        except BaseException:
            os.replace(old, target)
            trash.rmdir()
            raise
    for name in kept_dirs:  # after the swap: sub-folders cannot be linked
        os.replace(old / name, target / name)
    shutil.rmtree(trash, ignore_errors=True)
