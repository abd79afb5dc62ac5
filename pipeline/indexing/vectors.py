"""An index version's vectors file (vectors.npy), written and read in bounded chunks.

The builder never holds the N x dim matrix, and never memory-maps it either (mapped pages count
in the builder's RSS: 2 GB at 1 M fp32). It writes the file with pwrite / copy_file_range, chunk
by chunk, and reads it back with pread, one chunk at a time:
  - dirty pages of the file being written are flushed and dropped from the page cache after each
    chunk (POSIX_FADV_DONTNEED), so a build cannot push the served index's pages out of memory
    with gigabytes of dirty pages that the kernel cannot reclaim until they reach the disk;
  - rows kept from the previous version are copied file to file by the kernel (copy_file_range),
    in runs, never through Python.
The file may be float32 or float16 (pipeline.indexing.build.ANN_VECTORS_DTYPE); readers always get
float32 chunks.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

CHUNK = 50_000  # rows per read/write/add step: 100 MB fp32 at d = 512
_FEW_ROWS = 4_096  # take() reads rows one by one below this, by scanning the file above it


class VectorSource(Protocol):
    """Row-major unit vectors that the builder reads in chunks, as float32."""

    @property
    def count(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def chunks(self) -> Iterator[tuple[int, NDArray[np.float32]]]: ...

    def take(self, positions: NDArray[np.int64]) -> NDArray[np.float32]: ...


class ArraySource:
    """An in-memory (or memory-mapped) array seen as a VectorSource (tests, benchmarks)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    @property
    def count(self) -> int:
        return int(self.array.shape[0])

    @property
    def dim(self) -> int:
        return int(self.array.shape[1])

    def chunks(self) -> Iterator[tuple[int, NDArray[np.float32]]]:
        for start in range(0, self.count, CHUNK):
            yield start, np.ascontiguousarray(self.array[start : start + CHUNK], dtype=np.float32)

    def take(self, positions: NDArray[np.int64]) -> NDArray[np.float32]:
        return np.ascontiguousarray(self.array[positions], dtype=np.float32)


def as_source(vectors) -> VectorSource:
    return vectors if hasattr(vectors, "chunks") else ArraySource(vectors)


def _header(shape: tuple[int, int], dtype) -> bytes:
    """The .npy header np.save would write (so np.load and mmap readers open the file)."""
    import io

    buf = io.BytesIO()
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": shape,
    }
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


class VectorFile:
    """Read side of a vectors.npy file: pread in chunks, converted to float32; never mmapped."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with open(self.path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read(f)
            self.offset = f.tell()
        if fortran or len(shape) != 2:
            raise ValueError(f"{self.path} is not a row-major (n, dim) array")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.row_bytes = self.shape[1] * self.dtype.itemsize

    @property
    def count(self) -> int:
        return self.shape[0]

    @property
    def dim(self) -> int:
        return self.shape[1]

    def read(self, fd: int, start: int, stop: int) -> NDArray[np.float32]:
        """Rows [start, stop) as float32."""
        size = (stop - start) * self.row_bytes
        data = os.pread(fd, size, self.offset + start * self.row_bytes)
        if len(data) != size:
            raise ValueError(f"{self.path} is truncated")
        rows = np.frombuffer(data, dtype=self.dtype).reshape(stop - start, self.dim)
        return rows.astype(np.float32)  # a private float32 copy (also for float32 files)

    def chunks(self) -> Iterator[tuple[int, NDArray[np.float32]]]:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for start in range(0, self.count, CHUNK):
                yield start, self.read(fd, start, min(self.count, start + CHUNK))
        finally:
            os.close(fd)

    def take(self, positions: NDArray[np.int64]) -> NDArray[np.float32]:
        """Rows at `positions` (any order) as float32, reading at most one chunk at a time."""
        positions = np.asarray(positions, dtype=np.int64)
        out = np.empty((len(positions), self.dim), dtype=np.float32)
        if len(positions) <= _FEW_ROWS:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                for i, pos in enumerate(positions.tolist()):
                    out[i] = self.read(fd, pos, pos + 1)[0]
            finally:
                os.close(fd)
            return out
        order = np.argsort(positions, kind="stable")
        sorted_pos = positions[order]
        for start, block in self.chunks():
            lo, hi = np.searchsorted(sorted_pos, [start, start + len(block)])
            out[order[lo:hi]] = block[sorted_pos[lo:hi] - start]
        return out


class VectorWriter:
    """Write side: a new vectors.npy of a known shape, filled by row ranges in any order."""

    def __init__(self, path: Path, shape: tuple[int, int], dtype) -> None:
        self.path = Path(path)
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        header = _header(self.shape, self.dtype)
        self.offset = len(header)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(self.fd, header)
        os.ftruncate(self.fd, self.offset + self.shape[0] * self.row_bytes)
        self._dirty: tuple[int, int] | None = None  # written byte range not yet settled

    def __enter__(self) -> VectorWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            self._settle()
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1

    def write_rows(self, rows: NDArray[np.int64], block: NDArray[np.float32]) -> None:
        """File rows `rows` (ascending) = block, one pwrite per contiguous run of rows."""
        data = np.ascontiguousarray(block, dtype=self.dtype)
        for lo, hi in _runs(rows):
            start = self.offset + int(rows[lo]) * self.row_bytes
            _pwrite_all(self.fd, data[lo:hi].tobytes(), start)
            self._wrote(start, (hi - lo) * self.row_bytes)

    def copy_rows(self, src: VectorFile, src_start: int, dst_start: int, count: int) -> None:
        """Rows [dst_start, +count) = rows [src_start, +count) of `src` (same dtype), in-kernel."""
        if src.dtype != self.dtype or src.dim != self.shape[1]:
            raise ValueError("copy between vectors files of different dtype or dimension")
        in_fd = os.open(src.path, os.O_RDONLY)
        try:
            for done in range(0, count, CHUNK):
                n = min(CHUNK, count - done)
                src_off = src.offset + (src_start + done) * self.row_bytes
                dst_off = self.offset + (dst_start + done) * self.row_bytes
                _copy_range(in_fd, self.fd, src_off, dst_off, n * self.row_bytes)
                self._wrote(dst_off, n * self.row_bytes)
        finally:
            os.close(in_fd)

    def _wrote(self, offset: int, length: int) -> None:
        lo, hi = self._dirty or (offset, offset)
        self._dirty = (min(lo, offset), max(hi, offset + length))
        if self._dirty[1] - self._dirty[0] >= CHUNK * self.row_bytes:
            self._settle()

    def _settle(self) -> None:
        # Dirty pages cannot be dropped: write them out first, then tell the kernel we are done
        # with them (at most one chunk of this file is ever in the page cache).
        if self._dirty is None:
            return
        lo, hi = self._dirty
        os.fdatasync(self.fd)
        os.posix_fadvise(self.fd, lo, hi - lo, os.POSIX_FADV_DONTNEED)
        self._dirty = None


def _runs(rows: NDArray[np.int64]) -> list[tuple[int, int]]:
    """[lo, hi) index ranges of `rows` where the values are consecutive integers."""
    if not len(rows):
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    bounds = np.concatenate([[0], breaks, [len(rows)]]).tolist()
    return list(itertools.pairwise(bounds))


def copy_runs(
    src_rows: NDArray[np.int64], dst_rows: NDArray[np.int64]
) -> list[tuple[int, int, int]]:
    """(src_start, dst_start, count) runs where both row sequences advance by one together."""
    if not len(dst_rows):
        return []
    step = (np.diff(dst_rows) != 1) | (np.diff(src_rows) != 1)
    bounds = np.concatenate([[0], np.flatnonzero(step) + 1, [len(dst_rows)]]).tolist()
    return [
        (int(src_rows[lo]), int(dst_rows[lo]), hi - lo) for lo, hi in itertools.pairwise(bounds)
    ]


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _copy_range(in_fd: int, out_fd: int, src: int, dst: int, length: int) -> None:
    while length > 0:
        try:
            n = os.copy_file_range(in_fd, out_fd, length, src, dst)
        except OSError:  # no in-kernel copy between these files: copy through a buffer
            n = min(length, 16 << 20)
            _pwrite_all(out_fd, os.pread(in_fd, n, src), dst)
        if n <= 0:
            raise OSError(f"copy_file_range stopped with {length} bytes left")
        src, dst, length = src + n, dst + n, length - n
