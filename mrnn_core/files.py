"""Writing files so that a failed or killed save never destroys the last good one.

Every writer in mrnn (checkpoints, configs, training state) goes through
:func:`atomic_write`: the bytes go to a temporary file in the destination's
folder, are flushed and fsynced, and only then renamed over the destination
with :func:`os.replace`, which is atomic on POSIX and Windows. A reader at any
moment sees the old complete file or the new complete file, never a mix; a
save that fails (disk full, file-size limit, exception, SIGKILL) leaves the
old file untouched and at most a stray ``.<name>.tmp-*`` file beside it.

Reading (:func:`read_npz`) refuses anything but a regular file before
reading a byte, never unpickles, and bounds what it reads by what the
caller expects, so a FIFO, ``/dev/zero`` or a zip bomb cannot hang it or
exhaust memory.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import struct
import tempfile
import zipfile
import zlib

import numpy as np

from .errors import MRNNConfigError, MRNNFileError


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


# reading ---------------------------------------------------------------------

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))
_DEFLATE_MAX_RATIO = 1100
"""Deflate cannot compress better than about 1032:1, so a compressed member
declaring more is corrupt (or a zip bomb)."""


def open_regular(path, what: str):
    """Open ``path`` for binary reading, refusing anything but a regular file.

    The file is opened without blocking (a FIFO must not hang the caller)
    and checked with ``fstat`` on the open descriptor, so a file swapped for a
    FIFO or device between a check and the open is refused too.

    **Returns:** ``(file, size in bytes)``. **Raises** :class:`MRNNFileError`
    naming `path` (described as `what`).
    """
    path = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise MRNNFileError(f"{what} {path!r} does not exist") from None
    except IsADirectoryError:
        raise MRNNFileError(f"{what} {path!r} is a directory, expected a regular file") from None
    except OSError as err:
        raise MRNNFileError(f"{what} {path!r} cannot be opened: {err.strerror or err}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise MRNNFileError(f"{what} {path!r} is {kind}, expected a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def read_text(path, what: str, max_bytes: int = 1 << 28) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes`` bytes.

    For JSON configs and the like: a FIFO, device or directory is refused
    before anything is read (see :func:`open_regular`), and so is a file
    larger than ``max_bytes`` (default 256 MiB). **Raises**
    :class:`MRNNFileError` naming `path` (described as `what`).
    """
    f, size = open_regular(path, what)
    with f:
        if size > max_bytes:
            raise MRNNFileError(f"{what} {os.fspath(path)!r} holds {size} bytes, more than the "
                                f"{max_bytes} read at most")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise MRNNFileError(f"{what} {os.fspath(path)!r} grew past {max_bytes} bytes while read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MRNNFileError(
            f"{what} {os.fspath(path)!r} is not UTF-8 text: got byte "
            f"{err.object[err.start:err.start + 1]!r} at offset {err.start}") from None


def _read_into(f, nbytes: int) -> np.ndarray:
    """Exactly ``nbytes`` from ``f`` into a fresh ``uint8`` array (fewer if ``f`` ends early)."""
    buf = np.empty(nbytes, dtype=np.uint8)
    view, got = memoryview(buf), 0
    while got < nbytes:
        n = f.readinto(view[got:got + (1 << 24)])
        if not n:
            return buf[:got]
        got += n
    return buf


class _Refused(Exception):
    """A member that is well-formed but not what the caller accepts."""


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int,
                 shape_wanted: tuple | None = None):
    """One ``.npy`` member, header checked before any data is read.

    Refuses object (pickle) arrays, a shape other than ``shape_wanted`` (when
    given), more than ``max_bytes`` of data or more than the compressed size
    allows, and trailing or missing bytes; the whole member is read, so its
    CRC is verified.
    """
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(f"compression method {info.compress_type} (expected stored or deflated)")
    if info.compress_type == zipfile.ZIP_DEFLATED:
        if info.file_size > _DEFLATE_MAX_RATIO * max(info.compress_size, 1):
            raise ValueError(f"declares {info.file_size} bytes from {info.compress_size} "
                             f"compressed ones, more than deflate can give")
    elif info.file_size != info.compress_size:
        raise ValueError("stored member whose sizes disagree")
    label = (f"member {info.filename!r}" if info.filename.startswith("__")
             else f"params[{info.filename[:-4]!r}]")
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        if dtype.hasobject:
            raise _Refused(f"{label}: holds Python objects (dtype "
                           f"{dtype}), which are never loaded; expected a numeric array")
        if shape_wanted is not None and (dtype.kind not in "biuf" or dtype.itemsize > 8):
            kind = {"c": "complex ", "U": "string ", "S": "bytes ", "V": "structured "}.get(
                dtype.kind, "")
            raise _Refused(f"{label}: expected a real array (float16, "
                           f"float32 or float64; masks and signs may be bool or integer), got "
                           f"{kind}dtype {dtype}")
        if shape_wanted is not None and tuple(shape) != tuple(shape_wanted):
            raise _Refused(f"{label}: expected shape {tuple(shape_wanted)} "
                           f"for this network, got {tuple(shape)}")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes + f.tell() != info.file_size:
            raise ValueError(f"header says {shape} {dtype} ({nbytes} bytes) but the member "
                             f"holds {info.file_size - f.tell()} bytes of data")
        if nbytes > max_bytes:
            raise _Refused(f"{label}: {nbytes} bytes of dtype {dtype}, "
                           f"more than the {max_bytes} expected; expected a real numeric array")
        data = _read_into(f, nbytes)
        if data.size != nbytes or f.read(1):
            raise ValueError("data length does not match its header")
    if dtype.itemsize == 0:
        return np.zeros(shape, dtype=dtype)
    return data.view(dtype).reshape(shape, order="F" if fortran else "C")


def read_npz(path, what: str, limits=None) -> dict[str, np.ndarray]:
    """Read an ``.npz`` archive safely: a regular file, no pickles, bounded reads.

    **Arguments:**

    - `path`: the file.
    - `what`: how messages name it (``"checkpoint file"``).
    - `limits`: ``None`` (no bound but the file's), or a callable taking the
      ``__``-prefixed (metadata) members, which are read first, and
      returning ``{name: expected shape}`` for the other members (at most 8
      bytes an entry are read); a member it does not name is refused as
      unknown before it is read. It may raise :class:`MRNNConfigError` (e.g.
      for bad metadata); that propagates.

    **Returns:** name -> read-only array, ``.npy`` suffix removed.
    **Raises** :class:`MRNNFileError` naming `path` and what is wrong: never
    a bare ``BadZipFile``, ``zlib.error``, ``EOFError`` or the like.
    """
    path = os.fspath(path)
    f, size = open_regular(path, what)
    with f:
        head = f.read(8)
        if not head:
            raise MRNNFileError(f"{what} {path!r} is empty (0 bytes)")
        if head.startswith(b"\x93NUMPY"):
            raise MRNNFileError(f"{what} {path!r} is a single .npy array, expected an .npz "
                                f"archive (as written by Checkpoint.save)")
        if not head.startswith(b"PK"):
            raise MRNNFileError(f"{what} {path!r} is not an mrnn checkpoint (an .npz zip "
                                f"archive): it starts with {head[:4]!r}")
        f.seek(0)
        out: dict[str, np.ndarray] = {}
        name = None
        meta_limit = max(1 << 26, 8 * size)
        try:
            with zipfile.ZipFile(f) as archive:
                infos = archive.infolist()
                names = [i.filename for i in infos]
                for info in infos:
                    if not info.filename.endswith(".npy") or "/" in info.filename:
                        raise MRNNFileError(f"{what} {path!r}: member {info.filename!r} is not "
                                            f"an array (.npy); expected only arrays")
                if len(set(names)) != len(names):
                    dup = next(n for n in names if names.count(n) > 1)
                    raise MRNNFileError(f"{what} {path!r}: member {dup!r} appears twice")
                meta = [i for i in infos if i.filename.startswith("__")]
                for info in meta:
                    name = info.filename[:-4]
                    out[name] = _read_member(archive, info, meta_limit)
                name = None
                allowed = None if limits is None else limits(dict(out))
                rest = [i for i in infos if not i.filename.startswith("__")]
                unknown = [i.filename[:-4] for i in rest
                           if allowed is not None and i.filename[:-4] not in allowed]
                if unknown:
                    raise MRNNFileError(
                        f"{what} {path!r}: unknown array(s) {', '.join(map(repr, unknown))}; "
                        f"expected only {', '.join(allowed)}")
                for info in rest:
                    name = info.filename[:-4]
                    if allowed is None:
                        out[name] = _read_member(archive, info, max(size, 1) * _DEFLATE_MAX_RATIO)
                    else:
                        out[name] = _read_member(archive, info, 8 * math.prod(allowed[name]),
                                                 allowed[name])
        except MRNNConfigError:
            raise
        except _Refused as err:
            raise MRNNFileError(f"{what} {path!r}: {err}") from None
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
                ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError, struct.error,
                NotImplementedError, RuntimeError, OverflowError, MemoryError) as err:
            part = f" (array {name!r})" if name is not None else ""
            raise MRNNFileError(f"{what} {path!r} is corrupt or truncated{part}: "
                                f"{_plain(err)}") from None
    return out


def _plain(err: BaseException) -> str:
    """An error's text, without numpy's advice to load pickles."""
    text = str(err) or type(err).__name__
    if "pickle" in text.lower():
        return "it holds Python objects, which are never loaded"
    return text
