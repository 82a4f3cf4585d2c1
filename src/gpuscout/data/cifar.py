"""CIFAR-10's *binary* version: fixed-size records, no pickle.

The python version of CIFAR-10 is a set of pickles, and unpickling a file from the
internet runs whatever code it contains; the binary version is plain bytes. Each record
is 1 label byte then 3072 pixel bytes: 1024 red, 1024 green, 1024 blue, row-major 32x32.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gpuscout.data.splits import ImageSplit
from gpuscout.errors import UsageError

SIDE = 32
CHANNELS = 3
PIXELS = CHANNELS * SIDE * SIDE  # 3072
RECORD = 1 + PIXELS
NUM_CLASSES = 10
BATCH_DIR = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)


def decode_records(raw: bytes, origin: str = "<bytes>") -> tuple[bytes, bytes]:
    """``(labels, images)`` of a blob of CIFAR-10 binary records."""
    if not raw or len(raw) % RECORD:
        raise UsageError(
            f"{origin}: {len(raw)} bytes is not a whole number of {RECORD}-byte CIFAR records"
        )
    n = len(raw) // RECORD
    view = memoryview(raw)
    labels = bytes(view[0::RECORD][:n]) if n else b""
    images = b"".join(view[i * RECORD + 1 : (i + 1) * RECORD] for i in range(n))
    bad = max(labels)
    if bad >= NUM_CLASSES:
        raise UsageError(f"{origin}: label {bad} out of range 0-9; is this CIFAR-100?")
    return labels, images


def read_split(paths: Sequence[Path]) -> ImageSplit:
    labels: list[bytes] = []
    images: list[bytes] = []
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        lab, img = decode_records(raw, str(path))
        labels.append(lab)
        images.append(img)
    all_labels = b"".join(labels)
    return ImageSplit(b"".join(images), all_labels, len(all_labels), CHANNELS, SIDE, SIDE)


def encode_records(labels: bytes, images: bytes) -> bytes:
    if len(images) != len(labels) * PIXELS:
        raise ValueError(f"{len(images)} pixel bytes for {len(labels)} records")
    return b"".join(
        bytes((labels[i],)) + images[i * PIXELS : (i + 1) * PIXELS] for i in range(len(labels))
    )


def write_records(path: Path, labels: bytes, images: bytes) -> None:
    path.write_bytes(encode_records(labels, images))


def find_batch_dir(root: Path) -> Path | None:
    """``root`` itself or ``root/cifar-10-batches-bin``, whichever holds the batch files."""
    for cand in (root, root / BATCH_DIR):
        if all((cand / f).is_file() for f in (*TRAIN_FILES, *TEST_FILES)):
            return cand
    return None
