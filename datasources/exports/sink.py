"""Where an export's bytes go: a temporary file beside the destination, hashed and counted as written,
then fsynced and renamed over the destination (so the final name only ever holds a complete file)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

_BUFFER_BYTES = 1 << 20
_WRITEBACK_BYTES = 32 << 20


@dataclass(frozen=True)
class WrittenFile:
    rows: int
    byte_size: int
    sha256: str


class _Hashing(io.RawIOBase):
    """Passes bytes to the file, hashing and counting them. Not seekable, so a zip writer streams (data
    descriptors) instead of seeking back. Once discarded, writes go nowhere: a format library finishing
    late (on garbage collection) cannot fail or touch the file."""

    def __init__(self, target: BinaryIO) -> None:
        super().__init__()
        self._target: BinaryIO | None = target
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._flushed = 0  # bytes handed to the kernel's writeback

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data)
        if self._target is not None:
            self._target.write(view)
            self.sha256.update(view)
            self.size += view.nbytes
            if self.size - self._flushed >= _WRITEBACK_BYTES:
                self._start_writeback()
        return view.nbytes

    def _start_writeback(self) -> None:
        """Have the kernel start writing what is written so far, without waiting, so that the fsync at the
        end finds little left (a year of CSV is 800 MB: 2–3 s of fsync after the last row otherwise)."""
        assert self._target is not None
        if hasattr(os, "posix_fadvise"):  # Linux: DONTNEED starts writeback of the range's dirty pages
            os.posix_fadvise(
                self._target.fileno(), self._flushed, self.size - self._flushed, os.POSIX_FADV_DONTNEED
            )
        self._flushed = self.size

    def tell(self) -> int:
        return self.size

    def discard(self) -> None:
        self._target = None


class HashingSink:
    def __init__(self, destination: Path, temporary: Path, file: BinaryIO) -> None:
        self.destination = destination
        self.temporary = temporary
        self._file = file
        self._hashing = _Hashing(file)
        self.stream = io.BufferedWriter(self._hashing, _BUFFER_BYTES)

    @classmethod
    def create(cls, destination: Path) -> HashingSink:
        temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex}.partial")
        return cls(destination, temporary, open(temporary, "xb", buffering=0))

    def commit(self, rows: int) -> WrittenFile:
        """Flush, fsync and rename over the destination; the directory entry is fsynced too."""
        self.stream.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.temporary, self.destination)
        directory = os.open(self.destination.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return WrittenFile(rows, self._hashing.size, self._hashing.sha256.hexdigest())

    def discard(self) -> None:
        self._hashing.discard()
        with contextlib.suppress(OSError):
            self._file.close()
        self.temporary.unlink(missing_ok=True)
