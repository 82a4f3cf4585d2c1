"""The records a dataset loader returns: raw uint8 pixels and labels, no framework.

Pixels stay ``bytes`` so that ``gpuscout.data`` never imports torch or numpy; a
workload turns them into tensors with one ``torch.frombuffer`` call. Images are stored
channels-first per record (C x H x W), which is how both IDX (C = 1) and the CIFAR-10
binary files lay them out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageSplit:
    """One split (train or test): ``count`` images of ``channels x height x width`` bytes."""

    images: bytes
    labels: bytes
    count: int
    channels: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if len(self.images) != self.count * self.sample_bytes:
            raise ValueError(
                f"{len(self.images)} image bytes for {self.count} images of "
                f"{self.sample_bytes} bytes"
            )
        if len(self.labels) != self.count:
            raise ValueError(f"{len(self.labels)} labels for {self.count} images")

    @property
    def sample_bytes(self) -> int:
        return self.channels * self.height * self.width

    def head(self, n: int | None) -> ImageSplit:
        """The first ``n`` records (all of them when ``n`` is None or larger)."""
        if n is None or n >= self.count:
            return self
        if n < 1:
            raise ValueError("a split needs at least one record")
        return ImageSplit(
            self.images[: n * self.sample_bytes],
            self.labels[:n],
            n,
            self.channels,
            self.height,
            self.width,
        )


@dataclass(frozen=True)
class ImageDataset:
    """A classification dataset and where it came from.

    ``synthetic`` is True for the offline stand-in; every result trained on it must say
    so, because its accuracy says nothing about the real dataset.
    """

    name: str  # "fashion-mnist", "cifar-10"
    train: ImageSplit
    test: ImageSplit
    num_classes: int
    synthetic: bool
    source: str  # a directory, "cache:<dir>", or "synthetic (<why>)"
