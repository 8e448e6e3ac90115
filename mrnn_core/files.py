"""Writing files so that a failed or killed save never destroys the last good one.

Every writer in mrnn (checkpoints, configs, training state) goes through
:func:`atomic_write`: the bytes go to a temporary file in the destination's
folder, are flushed and fsynced, and only then renamed over the destination
with :func:`os.replace`, which is atomic on POSIX and Windows. A reader at any
moment sees the old complete file or the new complete file, never a mix; a
save that fails (disk full, file-size limit, exception, SIGKILL) leaves the
old file untouched and at most a stray ``.<name>.tmp-*`` file beside it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _file_mode(path: str) -> int:
    """The permissions the file would get from a plain ``open``: kept if it exists, else from the umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding: str | None = None):
    """Open a temporary file that replaces ``path`` only if the block completes.

    **Arguments:**

    - `path`: the destination (str or path-like). Its folder must exist.
    - `mode`: ``"wb"`` (default) or ``"w"`` (text; pass `encoding`).

    **Yields** the open temporary file. On leaving the block without an
    exception the file is flushed, fsynced and renamed over `path`; on an
    exception it is removed and `path` keeps whatever it held before.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=folder)
    try:
        os.chmod(tmp, _file_mode(path))
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)
