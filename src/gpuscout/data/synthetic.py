"""A clearly labelled offline stand-in for an image dataset: same shapes, learnable.

Random pixels with random labels cannot be learnt, so accuracy on them would say
nothing. Here each class has a prototype (a few filled rectangles and ellipses, with a
colour per channel), and every image is its class's prototype, shifted by up to two
pixels and scaled in brightness, plus a faint prototype of another class as a
distractor, plus uniform noise. A small MLP learns it well above chance but not
perfectly, like the real thing.

It is pure Python and still fast: the three parts are kept in disjoint value ranges
(main <= 110, distractor <= 70, noise <= 75), so adding them as big integers adds every
byte without a carry, one O(n) operation instead of a Python loop over pixels.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from gpuscout.data.splits import ImageSplit

MAIN_MAX = 110
DISTRACTOR_MAX = 70
NOISE_MAX = 75
SHIFTS = (-2, -1, 0, 1, 2)
SCALES = (0.7, 0.85, 1.0)
_NOISE_TABLE = bytes(v * NOISE_MAX // 255 for v in range(256))

Mask = list[list[float]]  # [row][col] in 0..1


def _shape_mask(side: int, rng: random.Random) -> Mask:
    """A few rectangles and ellipses, the brightest one winning where they overlap."""
    mask = [[0.0] * side for _ in range(side)]
    for _ in range(rng.randint(2, 4)):
        level = rng.uniform(0.4, 1.0)
        x0, x1 = sorted(rng.sample(range(2, side - 2), 2))
        y0, y1 = sorted(rng.sample(range(2, side - 2), 2))
        ellipse = rng.random() < 0.5
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        rx, ry = max((x1 - x0) / 2, 1.0), max((y1 - y0) / 2, 1.0)
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                inside = not ellipse or ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0
                if inside and level > mask[y][x]:
                    mask[y][x] = level
    return mask


def _render(mask: Mask, colour: Sequence[float], dx: int, dy: int, top: float) -> bytes:
    """Channels-first bytes of ``mask`` shifted by (dx, dy), each channel scaled."""
    side = len(mask)
    out = bytearray()
    for c in colour:
        for y in range(side):
            sy = y - dy
            row = mask[sy] if 0 <= sy < side else None
            for x in range(side):
                sx = x - dx
                v = row[sx] if row is not None and 0 <= sx < side else 0.0
                out.append(int(v * c * top))
    return bytes(out)


def _add_no_carry(*parts: bytes) -> bytes:
    n = len(parts[0])
    total = sum(int.from_bytes(p, "big") for p in parts)
    return total.to_bytes(n, "big")


def make_split(
    count: int,
    *,
    num_classes: int,
    channels: int,
    side: int,
    seed: int,
    prototype_seed: int = 1234,
) -> ImageSplit:
    """``count`` synthetic images; the same ``prototype_seed`` gives the same classes, so
    a train split and a test split made with different ``seed`` share their classes."""
    if count < 1:
        raise ValueError("count must be >= 1")
    proto_rng = random.Random(prototype_seed)
    masks = [_shape_mask(side, proto_rng) for _ in range(num_classes)]
    colours = [[proto_rng.uniform(0.5, 1.0) for _ in range(channels)] for _ in range(num_classes)]
    variants = {
        (k, dx, dy, s): _render(masks[k], colours[k], dx, dy, MAIN_MAX * s)
        for k in range(num_classes)
        for dx in SHIFTS
        for dy in SHIFTS
        for s in SCALES
    }
    faint = [_render(masks[k], colours[k], 0, 0, DISTRACTOR_MAX) for k in range(num_classes)]

    rng = random.Random(seed)
    labels = bytes(rng.randrange(num_classes) for _ in range(count))
    main: list[bytes] = []
    other: list[bytes] = []
    for y in labels:
        main.append(variants[(y, rng.choice(SHIFTS), rng.choice(SHIFTS), rng.choice(SCALES))])
        other.append(faint[(y + rng.randrange(1, num_classes)) % num_classes])
    pixels = channels * side * side
    noise = rng.randbytes(count * pixels).translate(_NOISE_TABLE)
    images = _add_no_carry(b"".join(main), b"".join(other), noise)
    return ImageSplit(images, labels, count, channels, side, side)
