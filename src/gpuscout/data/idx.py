"""The IDX format of MNIST and Fashion-MNIST, read and written without numpy.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the data. Only unsigned bytes
(type 0x08) are needed here: 0x00000803 is a 3-d image file, 0x00000801 a label file.
Files may be gzip-compressed, as they are distributed; the gzip magic decides.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

from gpuscout.errors import UsageError

UBYTE = 0x08
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_GZIP_MAGIC = b"\x1f\x8b"


def decode_idx(raw: bytes, origin: str = "<bytes>") -> tuple[tuple[int, ...], bytes]:
    """``(dims, data)`` of an IDX blob (gzip or raw); UsageError for anything malformed."""
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise UsageError(f"{origin}: broken gzip data ({exc})") from None
    if len(raw) < 4:
        raise UsageError(f"{origin}: too short for an IDX file")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or ndim == 0:
        raise UsageError(f"{origin}: not an IDX file (magic 0x{raw[:4].hex()})")
    if dtype != UBYTE:
        raise UsageError(f"{origin}: IDX type 0x{dtype:02x} is not unsigned bytes (0x08)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UsageError(f"{origin}: IDX header cut short")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    size = 1
    for d in dims:
        size *= d
    data = raw[header:]
    if len(data) != size:
        raise UsageError(f"{origin}: IDX dims {dims} need {size} bytes, file has {len(data)}")
    return tuple(dims), data


def read_idx(path: Path) -> tuple[tuple[int, ...], bytes]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode_idx(raw, str(path))


def encode_idx(dims: tuple[int, ...], data: bytes) -> bytes:
    size = 1
    for d in dims:
        size *= d
    if size != len(data):
        raise ValueError(f"dims {dims} need {size} bytes, got {len(data)}")
    return struct.pack(">HBB", 0, UBYTE, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + data


def write_idx(path: Path, dims: tuple[int, ...], data: bytes, *, compress: bool = False) -> None:
    """Write an IDX file (gzip-compressed when ``compress``); used by tests and caches."""
    blob = encode_idx(dims, data)
    path.write_bytes(gzip.compress(blob, mtime=0) if compress else blob)
