"""Dataset files in their standard formats, the cache, checksums and the synthetic stand-in."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import urllib.request
from pathlib import Path

import pytest

from gpuscout.data import cifar, fetch
from gpuscout.data.datasets import FASHION_FILES, load_dataset, prefetch
from gpuscout.data.idx import IMAGES_MAGIC, LABELS_MAGIC, decode_idx, encode_idx, write_idx
from gpuscout.data.synthetic import make_split
from gpuscout.errors import UnknownNameError, UsageError


def _images(n: int, side: int = 28) -> bytes:
    return bytes((i * 7 + j) % 256 for i in range(n) for j in range(side * side))


def write_fashion(root: Path, n_train: int = 12, n_test: int = 5, compress: bool = True) -> None:
    sfx = ".gz" if compress else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            root / f"{prefix}-images-idx3-ubyte{sfx}", (n, 28, 28), _images(n), compress=compress
        )
        labels = bytes(i % 10 for i in range(n))
        write_idx(root / f"{prefix}-labels-idx1-ubyte{sfx}", (n,), labels, compress=compress)


# -- IDX ------------------------------------------------------------------------------


def test_idx_header_is_the_standard_one() -> None:
    blob = encode_idx((2, 28, 28), bytes(2 * 784))
    assert struct.unpack(">I", blob[:4])[0] == IMAGES_MAGIC == 0x00000803
    assert struct.unpack(">3I", blob[4:16]) == (2, 28, 28)  # big-endian dims
    labels = encode_idx((3,), b"\x01\x02\x03")
    assert struct.unpack(">II", labels[:8]) == (LABELS_MAGIC, 3)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path: Path, compress: bool) -> None:
    data = _images(3)
    path = tmp_path / "x.idx"
    write_idx(path, (3, 28, 28), data, compress=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") is compress
    dims, back = decode_idx(path.read_bytes())
    assert dims == (3, 28, 28) and back == data


@pytest.mark.parametrize(
    "blob, words",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"x", "not an IDX"),
        (b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"x" * 4, "not unsigned bytes"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"xy", "need 5 bytes"),
        (b"\x1f\x8b" + b"garbage", "gzip"),
    ],
)
def test_idx_rejects_malformed(blob: bytes, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        decode_idx(blob)


# -- CIFAR-10 binary --------------------------------------------------------------------


def test_cifar_binary_round_trip(tmp_path: Path) -> None:
    labels = bytes([3, 0, 9])
    images = bytes((i * 31) % 256 for i in range(3 * cifar.PIXELS))
    path = tmp_path / "data_batch_1.bin"
    cifar.write_records(path, labels, images)
    raw = path.read_bytes()
    assert len(raw) == 3 * 3073 and raw[0] == 3 and raw[3073] == 0  # label byte first
    split = cifar.read_split([path])
    assert (split.labels, split.images) == (labels, images)
    assert (split.count, split.channels, split.height, split.width) == (3, 3, 32, 32)


def test_cifar_rejects_partial_records_and_cifar100_labels() -> None:
    with pytest.raises(UsageError, match="whole number"):
        cifar.decode_records(b"\x00" * 3000)
    with pytest.raises(UsageError, match="CIFAR-100"):
        cifar.decode_records(bytes([42]) + bytes(cifar.PIXELS))


def test_cifar_directory_layout(tmp_path: Path) -> None:
    batch_dir = tmp_path / cifar.BATCH_DIR
    batch_dir.mkdir()
    for i, name in enumerate((*cifar.TRAIN_FILES, *cifar.TEST_FILES)):
        cifar.write_records(batch_dir / name, bytes([i % 10] * 2), bytes(2 * cifar.PIXELS))
    ds = load_dataset("cifar-10", tmp_path, allow_download=False)
    assert ds.train.count == 10 and ds.test.count == 2 and not ds.synthetic
    assert ds.train.labels == bytes([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])


# -- loading, the cache, downloads ---------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_fashion_from_data_dir(tmp_path: Path, compress: bool) -> None:
    write_fashion(tmp_path, compress=compress)
    ds = load_dataset("fashion-mnist", tmp_path, allow_download=False, limit=10)
    assert not ds.synthetic and ds.source == str(tmp_path)
    assert ds.train.count == 10 and ds.test.count == 5
    assert ds.train.images == _images(12)[: 10 * 784]
    assert ds.train.labels == bytes(i % 10 for i in range(10))


def test_missing_data_dir_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no fashion-mnist files"):
        load_dataset("fashion-mnist", tmp_path / "nowhere")
    with pytest.raises(UnknownNameError):
        load_dataset("mnist-fashion")


def test_synthetic_fallback_is_labelled(tmp_path: Path) -> None:
    ds = load_dataset("fashion-mnist", allow_download=False, limit=300, cache_dir=tmp_path)
    assert ds.synthetic and ds.source.startswith("synthetic")
    assert (ds.train.count, ds.train.channels, ds.train.height, ds.train.width) == (300, 1, 28, 28)
    assert set(ds.train.labels) <= set(range(10)) and len(set(ds.train.labels)) == 10
    again = load_dataset("fashion-mnist", allow_download=False, limit=300, cache_dir=tmp_path)
    assert again.train.images == ds.train.images  # deterministic for a seed


def test_synthetic_classes_are_distinguishable() -> None:
    """Nearest class mean beats chance by far: the data has learnable structure."""
    train = make_split(400, num_classes=10, channels=1, side=28, seed=1)
    test = make_split(200, num_classes=10, channels=1, side=28, seed=2)
    sums = [[0] * 784 for _ in range(10)]
    counts = [0] * 10
    for i, y in enumerate(train.labels):
        img = train.images[i * 784 : (i + 1) * 784]
        counts[y] += 1
        sums[y] = [a + b for a, b in zip(sums[y], img, strict=True)]
    means = [[v / max(c, 1) for v in s] for s, c in zip(sums, counts, strict=True)]
    correct = 0
    for i, y in enumerate(test.labels):
        img = test.images[i * 784 : (i + 1) * 784]
        dists = [sum((a - b) ** 2 for a, b in zip(img, m, strict=True)) for m in means]
        correct += dists.index(min(dists)) == y
    assert correct / test.count > 0.5  # chance is 0.1


class _Handler(urllib.request.BaseHandler):
    """Serves fixed bytes for any http URL; counts requests."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs
        self.calls: list[str] = []

    def http_open(self, req: urllib.request.Request) -> io.BytesIO:
        url = req.get_full_url()
        self.calls.append(url)
        name = url.rsplit("/", 1)[1]
        if name not in self.blobs:
            raise urllib.error.URLError("no route to host")
        resp = io.BytesIO(self.blobs[name])
        resp.url = url  # type: ignore[attr-defined]
        resp.code = 200  # type: ignore[attr-defined]
        resp.msg = "OK"  # type: ignore[attr-defined]
        resp.headers = {}  # type: ignore[attr-defined]
        resp.info = lambda: {}  # type: ignore[attr-defined]
        return resp


def _opener(blobs: dict[str, bytes]) -> tuple[urllib.request.OpenerDirector, _Handler]:
    handler = _Handler(blobs)
    opener = urllib.request.OpenerDirector()
    opener.add_handler(handler)
    return opener, handler


def test_download_verifies_and_caches(tmp_path: Path) -> None:
    blob = gzip.compress(b"payload")
    sha = hashlib.sha256(blob).hexdigest()
    opener, handler = _opener({"f.gz": blob})
    dest = tmp_path / "cache" / "f.gz"
    assert fetch.download("http://x/f.gz", dest, sha, opener=opener) == dest
    assert dest.read_bytes() == blob
    fetch.download("http://x/f.gz", dest, sha, opener=opener)
    assert len(handler.calls) == 1  # the second call used the verified cache


def test_checksum_mismatch_is_rejected_and_nothing_cached(tmp_path: Path) -> None:
    opener, _ = _opener({"f.gz": b"tampered"})
    dest = tmp_path / "f.gz"
    with pytest.raises(fetch.ChecksumError, match="SHA-256"):
        fetch.download("http://x/f.gz", dest, "0" * 64, opener=opener)
    assert not dest.exists() and not list(tmp_path.glob("*.part"))


def test_offline_download_fails_fast_and_remembers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    dest = tmp_path / "f.gz"
    with pytest.raises(fetch.DownloadError, match="cannot download"):
        fetch.download("http://x/f.gz", dest, "0" * 64)
    assert fetch.recently_failed(tmp_path)
    with pytest.raises(fetch.DownloadError, match="less than a day ago"):
        fetch.download("http://x/f.gz", dest, "0" * 64)
    monkeypatch.setenv(fetch.OFFLINE_ENV, "1")
    with pytest.raises(fetch.DownloadError, match=fetch.OFFLINE_ENV):
        fetch.download("http://x/f.gz", tmp_path / "other" / "g.gz", "0" * 64)


def test_load_falls_back_to_synthetic_when_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path))
    monkeypatch.setenv(fetch.OFFLINE_ENV, "1")
    ds = load_dataset("fashion-mnist", limit=50)
    assert ds.synthetic and "download failed" in ds.source
    assert prefetch("fashion-mnist").startswith("not available")


def test_tampered_cache_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path))
    cache = fetch.data_cache_dir() / "fashion-mnist"
    cache.mkdir(parents=True)
    assert cache.is_relative_to(tmp_path)
    for name in FASHION_FILES:
        (cache / name).write_bytes(b"not the real file")
    with pytest.raises(fetch.ChecksumError):
        load_dataset("fashion-mnist", allow_download=False)


# -- where load_dataset takes the data from, in order -----------------------------------


def write_cifar(root: Path) -> Path:
    """Six one-image-pair batches (labels 0..5) in CIFAR's layout under ``root``."""
    batch_dir = root / cifar.BATCH_DIR
    batch_dir.mkdir(parents=True)
    for i, name in enumerate((*cifar.TRAIN_FILES, *cifar.TEST_FILES)):
        cifar.write_records(batch_dir / name, bytes([i] * 2), bytes(2 * cifar.PIXELS))
    return batch_dir


def test_an_unchecked_cifar_cache_is_used_and_named(tmp_path: Path) -> None:
    batch_dir = write_cifar(tmp_path / "cifar-10")
    ds = load_dataset("cifar-10", allow_download=False, cache_dir=tmp_path, limit=3)
    assert (ds.name, ds.source, ds.synthetic, ds.num_classes) == (
        "cifar-10",
        f"cache:{batch_dir}",
        False,
        10,
    )
    assert (ds.train.count, ds.test.count) == (3, 2)  # the limit cuts the training split only
    assert ds.train.labels == bytes([0, 0, 1])


def test_a_download_fills_the_cache_and_is_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpuscout.data import datasets

    asked: list[tuple[Path, float]] = []

    def download(cache: Path, timeout_s: float) -> None:
        asked.append((cache, timeout_s))
        write_cifar(cache)

    monkeypatch.setattr(datasets, "_download_cifar", download)
    ds = load_dataset("cifar-10", cache_dir=tmp_path, timeout_s=7.5)
    assert asked == [(tmp_path / "cifar-10", 7.5)]
    assert ds.source == f"cache:{tmp_path / 'cifar-10' / cifar.BATCH_DIR}" and not ds.synthetic
    assert ds.train.count == 10


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (PermissionError("read-only file system"), "cache unusable: read-only file system"),
        (fetch.DownloadError("cannot download x"), "download failed: cannot download x"),
        (fetch.ChecksumError("x: SHA-256 mismatch"), "download failed: x: SHA-256 mismatch"),
    ],
)
def test_a_failed_download_falls_back_to_synthetic_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, why: str
) -> None:
    from gpuscout.data import datasets

    def download(cache: Path, timeout_s: float) -> None:
        raise error

    monkeypatch.setattr(datasets, "_download_fashion", download)
    ds = load_dataset("fashion-mnist", cache_dir=tmp_path, limit=600, seed=3)
    assert ds.synthetic and ds.source == f"synthetic ({why})"
    assert (ds.train.count, ds.test.count) == (600, 100)  # test: limit / 6, at least 100


def test_without_download_the_synthetic_stand_in_says_so(tmp_path: Path) -> None:
    ds = load_dataset("cifar-10", allow_download=False, cache_dir=tmp_path, limit=60)
    assert ds.source == "synthetic (no --data-dir given and no cached copy)"
    assert (ds.train.count, ds.test.count, ds.train.channels, ds.train.width) == (60, 100, 3, 32)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "fashion-mnist",
            "expected train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz",
        ),
        ("cifar-10", "expected cifar-10-batches-bin/data_batch_1..5.bin, test_batch.bin"),
    ],
)
def test_a_data_dir_without_the_files_says_which_files(
    tmp_path: Path, name: str, message: str
) -> None:
    (tmp_path / "a-file").write_text("")
    for where in (tmp_path, tmp_path / "a-file", tmp_path / "nowhere"):
        with pytest.raises(UsageError) as exc:
            load_dataset(name, where)
        assert (exc.value.message, exc.value.hint) == (f"no {name} files in {where}", message)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("fashion", "did you mean fashion-mnist?"),
        ("cifar10", "did you mean cifar-10?"),
        ("mnist", ""),
    ],
)
def test_an_unknown_dataset_suggests_one_with_its_first_letter(name: str, hint: str) -> None:
    with pytest.raises(UnknownNameError) as exc:
        load_dataset(name)
    assert (exc.value.message, exc.value.hint) == (f"unknown dataset {name!r}", hint)
