"""Driver, CUDA and wheel compatibility facts the doctor reasons with.

Sources (see ../shared/reference/doctor-and-fit.md, part A1):
- minimum Linux x86_64 driver per CUDA toolkit: CUDA 13.1 release notes, table 3;
- minor-version compatibility: 11.x needs >= 450.80, 12.x >= 525.60, 13.x >= 580.65;
- PyTorch wheel variants and their architecture lists: pytorch RELEASE.md matrix
  (pytorch/pytorch#182849), cu128 arch list as reported in jhj0517/Whisper-WebUI#653.
"""

from __future__ import annotations

from dataclasses import dataclass

# (CUDA major, minor) -> minimum Linux driver (toolkit driver, GA release).
MIN_DRIVER_FOR_CUDA: dict[tuple[int, int], str] = {
    (11, 0): "450.51.05",
    (11, 1): "455.23",
    (11, 2): "460.27.03",
    (11, 3): "465.19.01",
    (11, 4): "470.42.01",
    (11, 5): "495.29.05",
    (11, 6): "510.39.01",
    (11, 7): "515.43.04",
    (11, 8): "520.61.05",
    (12, 0): "525.60.13",
    (12, 1): "530.30.02",
    (12, 2): "535.54.03",
    (12, 3): "545.23.06",
    (12, 4): "550.54.14",
    (12, 5): "555.42.02",
    (12, 6): "560.28.03",
    (12, 8): "570.26",
    (12, 9): "575.51.03",
    (13, 0): "580.65.06",
    (13, 1): "590.44.01",
}


@dataclass(frozen=True)
class TorchWheel:
    tag: str  # the index suffix: download.pytorch.org/whl/<tag>
    cuda: tuple[int, int]
    min_cc: tuple[int, int]
    max_cc: tuple[int, int]  # highest compute capability with native code
    ptx_above: bool = False  # PTX for max_cc is shipped, so later CCs can JIT


# Newest first. The wheel a user should install is the first whose CUDA the driver runs
# and whose architectures cover the GPU.
TORCH_WHEELS: tuple[TorchWheel, ...] = (
    TorchWheel("cu130", (13, 0), (7, 5), (12, 0), ptx_above=True),
    TorchWheel("cu128", (12, 8), (7, 5), (12, 0)),
    TorchWheel("cu126", (12, 6), (5, 0), (9, 0)),
    TorchWheel("cu118", (11, 8), (3, 7), (9, 0)),
)


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """'12.8' -> (12, 8); '580.95.05' -> (580, 95, 5); junk -> None."""
    if not text:
        return None
    parts: list[int] = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None


def cuda_from_nvml(value: int | None) -> tuple[int, int] | None:
    """NVML's encoding 12040 -> (12, 4)."""
    if value is None:
        return None
    return value // 1000, (value % 1000) // 10


def min_driver_for(cuda: tuple[int, int]) -> str | None:
    if cuda in MIN_DRIVER_FOR_CUDA:
        return MIN_DRIVER_FOR_CUDA[cuda]
    # An unlisted minor release needs at least the driver of the nearest listed one below.
    older = [k for k in MIN_DRIVER_FOR_CUDA if k[0] == cuda[0] and k <= cuda]
    return MIN_DRIVER_FOR_CUDA[max(older)] if older else None


def arch_supports(arch_list: tuple[str, ...], cc: tuple[int, int]) -> bool:
    """Whether a build with ``arch_list`` has code that runs on compute capability ``cc``.

    A cubin for sm_XY runs on X.Z with Z >= Y (same major only); PTX (compute_XY) runs on
    any later CC through the driver's JIT.
    """
    for arch in arch_list:
        kind, _, num = arch.partition("_")
        digits = "".join(ch for ch in num if ch.isdigit())
        if len(digits) < 2:
            continue
        major, minor = int(digits[:-1]), int(digits[-1])
        if kind == "sm" and major == cc[0] and minor <= cc[1]:
            return True
        if kind == "compute" and (major, minor) <= cc:
            return True
    return False


def recommend_torch_wheel(
    driver_cuda: tuple[int, int] | None, cc: tuple[int, int] | None
) -> TorchWheel | None:
    """The newest PyTorch CUDA wheel that both the driver and the GPU allow."""
    for wheel in TORCH_WHEELS:
        if driver_cuda is not None and wheel.cuda > driver_cuda:
            continue
        if cc is not None:
            if cc < wheel.min_cc:
                continue
            if cc > wheel.max_cc and not (wheel.ptx_above or cc[0] == wheel.max_cc[0]):
                continue
        return wheel
    return None


def torch_install_command(wheel: TorchWheel | None, reinstall: bool = True) -> str:
    if wheel is None:
        return "pip install torch  # no CUDA wheel matches this driver and GPU: upgrade the driver"
    flag = " --force-reinstall" if reinstall else ""
    return f"pip install{flag} torch --index-url https://download.pytorch.org/whl/{wheel.tag}"
