"""Datasets for the workloads: Fashion-MNIST (IDX) and CIFAR-10 (binary), no framework.

``load_dataset("fashion-mnist", data_dir)`` returns raw bytes plus where they came
from; without files or network it returns a learnable synthetic stand-in marked
``synthetic=True``. Importing this package reads nothing and imports no torch.
"""

from __future__ import annotations

from gpuscout.data.datasets import (
    CIFAR10,
    DATASETS,
    FASHION,
    load_cifar10,
    load_dataset,
    load_fashion_mnist,
)
from gpuscout.data.fetch import ChecksumError, DownloadError, data_cache_dir, sha256_file
from gpuscout.data.splits import ImageDataset, ImageSplit

__all__ = [
    "CIFAR10",
    "DATASETS",
    "FASHION",
    "ChecksumError",
    "DownloadError",
    "ImageDataset",
    "ImageSplit",
    "data_cache_dir",
    "load_cifar10",
    "load_dataset",
    "load_fashion_mnist",
    "sha256_file",
]
