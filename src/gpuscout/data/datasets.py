"""Fashion-MNIST and CIFAR-10: from a directory, from the cache, downloaded, or synthetic.

The order is the user's directory (an error if the files are not there: the user asked
for them), then the verified cache, then one fast download attempt, then the labelled
synthetic stand-in, so every workload runs offline and says which data it used.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

from gpuscout.data import cifar
from gpuscout.data.fetch import (
    DEFAULT_TIMEOUT_S,
    ChecksumError,
    DownloadError,
    data_cache_dir,
    verify,
)
from gpuscout.data.fetch import download as fetch
from gpuscout.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from gpuscout.data.splits import ImageDataset, ImageSplit
from gpuscout.data.synthetic import make_split
from gpuscout.errors import UsageError

FASHION = "fashion-mnist"
CIFAR10 = "cifar-10"
DATASETS = (FASHION, CIFAR10)

FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# Published SHA-256 of the four gzip files (the same values appear in several
# independent loaders; the dataset's own README lists MD5 only).
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": (
        "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc"
    ),
    "train-labels-idx1-ubyte.gz": (
        "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf"
    ),
}
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
FASHION_SHAPE = (60_000, 10_000, 1, 28)
CIFAR_SHAPE = (50_000, 10_000, 3, 32)


def _idx_pair(root: Path, prefix: str) -> ImageSplit | None:
    """``<prefix>-images-idx3-ubyte[.gz]`` and its labels, or None when absent."""

    def find(kind: str, n: int) -> Path | None:
        for name in (f"{prefix}-{kind}-idx{n}-ubyte.gz", f"{prefix}-{kind}-idx{n}-ubyte"):
            if (root / name).is_file():
                return root / name
        return None

    img_path, lab_path = find("images", 3), find("labels", 1)
    if img_path is None or lab_path is None:
        return None
    img_dims, images = read_idx(img_path)
    lab_dims, labels = read_idx(lab_path)
    if len(img_dims) != 3:
        raise UsageError(
            f"{img_path}: expected 3 image dims (0x{IMAGES_MAGIC:08x}), got {img_dims}"
        )
    if len(lab_dims) != 1:
        raise UsageError(f"{lab_path}: expected 1 label dim (0x{LABELS_MAGIC:08x}), got {lab_dims}")
    if img_dims[0] != lab_dims[0]:
        raise UsageError(f"{img_path}: {img_dims[0]} images but {lab_dims[0]} labels")
    return ImageSplit(images, labels, img_dims[0], 1, img_dims[1], img_dims[2])


def read_fashion_dir(root: Path) -> ImageDataset | None:
    for cand in (root, root / "fashion-mnist", root / "FashionMNIST" / "raw"):
        train, test = _idx_pair(cand, "train"), _idx_pair(cand, "t10k")
        if train is not None and test is not None:
            return ImageDataset(FASHION, train, test, 10, False, str(cand))
    return None


def read_cifar_dir(root: Path) -> ImageDataset | None:
    batch_dir = cifar.find_batch_dir(root)
    if batch_dir is None:
        return None
    train = cifar.read_split([batch_dir / f for f in cifar.TRAIN_FILES])
    test = cifar.read_split([batch_dir / f for f in cifar.TEST_FILES])
    return ImageDataset(CIFAR10, train, test, cifar.NUM_CLASSES, False, str(batch_dir))


def _download_fashion(cache: Path, timeout_s: float) -> None:
    for name, sha in FASHION_FILES.items():
        fetch(FASHION_URL + name, cache / name, sha, timeout_s=timeout_s)


def _download_cifar(cache: Path, timeout_s: float) -> None:
    archive = fetch(CIFAR_URL, cache / "cifar-10-binary.tar.gz", CIFAR_SHA256, timeout_s=timeout_s)
    out = cache / cifar.BATCH_DIR
    out.mkdir(parents=True, exist_ok=True)
    wanted = {f"{cifar.BATCH_DIR}/{f}" for f in (*cifar.TRAIN_FILES, *cifar.TEST_FILES)}
    # Only the known member names are read, by name, into files we name: a hostile
    # archive cannot write outside the cache (no extractall, no member paths used).
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.name in wanted and member.isfile():
                src = tar.extractfile(member)
                if src is not None:
                    (out / Path(member.name).name).write_bytes(src.read())


def _synthetic(name: str, why: str, seed: int, limit: int | None) -> ImageDataset:
    n_train, n_test, channels, side = FASHION_SHAPE if name == FASHION else CIFAR_SHAPE
    if limit is not None:
        n_train, n_test = min(n_train, limit), min(n_test, max(limit // 6, 100))
    shape = {"num_classes": 10, "channels": channels, "side": side}
    return ImageDataset(
        name,
        make_split(n_train, seed=seed, **shape),
        make_split(n_test, seed=seed + 1, **shape),
        10,
        True,
        f"synthetic ({why})",
    )


def load_dataset(
    name: str,
    data_dir: Path | str | None = None,
    *,
    allow_download: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    limit: int | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
) -> ImageDataset:
    """The dataset ``name`` (``fashion-mnist`` or ``cifar-10``), ``limit`` training images
    at most (the test split is kept whole unless synthetic).

    Raises UsageError when ``data_dir`` is given but does not hold the files, and
    ChecksumError when a cached file has been altered; never fails for lack of network.
    """
    if name not in DATASETS:
        from gpuscout.errors import UnknownNameError

        raise UnknownNameError("dataset", name, [d for d in DATASETS if d[0] == name[:1]])
    if data_dir is not None:
        return _limited(_from_data_dir(name, Path(data_dir).expanduser()), limit)
    cache = (cache_dir or data_cache_dir()) / name
    found, why = _from_cache(name, cache, allow_download, timeout_s)
    if found is None:
        return _synthetic(name, why, seed, limit)
    return _limited(
        ImageDataset(found.name, found.train, found.test, 10, False, f"cache:{found.source}"),
        limit,
    )


def _reader(name: str) -> Callable[[Path], ImageDataset | None]:
    return read_fashion_dir if name == FASHION else read_cifar_dir


def _from_data_dir(name: str, root: Path) -> ImageDataset:
    """The dataset in the user's directory; UsageError naming the files when absent."""
    found = _reader(name)(root) if root.is_dir() else None
    if found is None:
        files = (
            ", ".join(FASHION_FILES)
            if name == FASHION
            else f"{cifar.BATCH_DIR}/data_batch_1..5.bin, test_batch.bin"
        )
        raise UsageError(f"no {name} files in {root}", f"expected {files}")
    return found


def _from_cache(
    name: str, cache: Path, allow_download: bool, timeout_s: float
) -> tuple[ImageDataset | None, str]:
    """The cached dataset, downloaded into the cache first if allowed and needed; or
    None and why there is none."""
    if name == FASHION and all((cache / f).is_file() for f in FASHION_FILES):
        for f, sha in FASHION_FILES.items():
            verify(cache / f, sha)  # a cached file altered since its download is refused
    reader = _reader(name)
    found = reader(cache) if cache.is_dir() else None
    why = "no --data-dir given and no cached copy"
    if found is None and allow_download:
        try:
            (_download_fashion if name == FASHION else _download_cifar)(cache, timeout_s)
            found = reader(cache)
        except (DownloadError, ChecksumError) as exc:
            why = f"download failed: {exc.message}"
        except OSError as exc:  # an unwritable cache directory must not stop a benchmark
            why = f"cache unusable: {exc}"
    return found, why


def _limited(ds: ImageDataset, limit: int | None) -> ImageDataset:
    if limit is None:
        return ds
    return ImageDataset(
        ds.name, ds.train.head(limit), ds.test, ds.num_classes, ds.synthetic, ds.source
    )


def load_fashion_mnist(data_dir: Path | str | None = None, **kw: object) -> ImageDataset:
    return load_dataset(FASHION, data_dir, **kw)  # type: ignore[arg-type]


def load_cifar10(data_dir: Path | str | None = None, **kw: object) -> ImageDataset:
    return load_dataset(CIFAR10, data_dir, **kw)  # type: ignore[arg-type]


def prefetch(name: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """Make sure the dataset is in the cache, downloading once; says what happened.

    Cheap when the files are cached or a download failed recently (nothing is parsed),
    so the parent process calls it before starting workers that must not download.
    """
    cache = data_cache_dir() / name
    reader = _reader(name)
    try:
        present = (
            all((cache / f).is_file() for f in FASHION_FILES)
            if name == FASHION
            else cifar.find_batch_dir(cache) is not None
        )
        if present:
            return f"cached in {cache}"
        (_download_fashion if name == FASHION else _download_cifar)(cache, timeout_s)
        return f"downloaded to {cache}" if reader(cache) is not None else "download incomplete"
    except (DownloadError, ChecksumError) as exc:
        return f"not available: {exc.message}"
    except OSError as exc:
        return f"not available: {exc}"
