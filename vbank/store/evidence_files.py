"""Files of evidence under the data directory: read without following links, written private.

An item of a sealed package is a file the branch wrote. Whoever can write the data
directory could put a symbolic link in its place (or in place of a folder on its path):
verify would then hash, the auditor API serve, and ``vbank evidence export`` copy whatever
it points at (another session's file, the database, a file outside the data directory).
So every item is opened one folder at a time with ``O_NOFOLLOW``, and a link is reported
as tampering, never followed. The data directory itself may be a link (``var -> /srv/...``).

Modes: folders of evidence 0750 and files 0640 (the server's user reads and writes, its
group, e.g. the auditors who run ``vbank evidence verify``, reads, nobody else). ``vbank
serve`` also sets the umask 027, so recordings, snapshots, documents and the database come
out the same.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path, PurePosixPath

from vbank.domain.evidence import EvidenceError, path_problem

#: evidence files: the server's user reads and writes, its group reads, others nothing
FILE_MODE = 0o640
#: evidence folders
DIR_MODE = 0o750
#: the umask ``vbank serve`` runs with, so every file it makes has at most these modes
SERVER_UMASK = 0o027


class LinkedItem(EvidenceError):
    """An item path that is (or passes through) a symbolic link."""

    def __init__(self, path: str) -> None:
        super().__init__(f"linked: {path} is a symbolic link (an item is never one: "
                         f"tampering)")
        self.path = path


def open_item(data_dir: Path, relative: str) -> int:
    """A read-only descriptor of the regular file ``relative`` under ``data_dir``.

    ``LinkedItem`` when a step below ``data_dir`` is a symbolic link; ``FileNotFoundError``
    when it is absent or not a regular file; other ``OSError`` when it cannot be read.
    """
    if path_problem(relative):
        raise FileNotFoundError(relative)
    *folders, name = PurePosixPath(relative).parts
    fd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for folder in folders:
            inner = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        # O_NONBLOCK: a FIFO put in an item's place must not hang verify
        item = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    except OSError as exc:
        # O_NOFOLLOW refuses a link with ELOOP, or with ENOTDIR where a folder is expected
        if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR
                                        and _is_link(exc.filename, fd)):
            raise LinkedItem(relative) from exc
        if exc.errno == errno.ENOTDIR:
            raise FileNotFoundError(relative) from exc
        raise
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(item).st_mode):
        os.close(item)
        raise FileNotFoundError(relative)
    os.set_blocking(item, True)
    return item


def _is_link(name: object, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(str(name), dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def read_item(data_dir: Path, relative: str) -> bytes:
    with os.fdopen(open_item(data_dir, relative), "rb") as f:
        return f.read()


def item_digest(data_dir: Path, relative: str) -> tuple[str, int] | None:
    """SHA-256 and size of an item read in chunks; None when it cannot be read.

    ``LinkedItem`` when it is a link. (``vbank.rtc.recorder`` hashes recordings the same
    way; importing it would load PyAV here.)
    """
    h = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(open_item(data_dir, relative), "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
    except LinkedItem:
        raise
    except OSError:
        return None
    return h.hexdigest(), size


def check_no_link(data_dir: Path, relative: str) -> None:
    """``LinkedItem`` if ``relative`` is a link; ``OSError`` if it cannot be opened."""
    os.close(open_item(data_dir, relative))


def private_dir(path: Path) -> None:
    """Make ``path`` (and missing parents) and give it the evidence folder mode."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Write a new evidence file with the evidence file mode, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), FILE_MODE)
        f.write(data)
