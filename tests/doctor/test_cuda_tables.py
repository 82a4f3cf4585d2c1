from __future__ import annotations

import pytest

from gpuscout.doctor.cuda_tables import (
    arch_supports,
    cuda_from_nvml,
    min_driver_for,
    parse_version,
    recommend_torch_wheel,
    torch_install_command,
)


def test_parse_version() -> None:
    assert parse_version("12.8") == (12, 8)
    assert parse_version("580.95.05") == (580, 95, 5)
    assert parse_version("2.11.0+cu130") == (2, 11, 0)
    assert parse_version(None) is None
    assert parse_version("abc") is None


def test_cuda_from_nvml_encoding() -> None:
    assert cuda_from_nvml(12040) == (12, 4)
    assert cuda_from_nvml(13000) == (13, 0)
    assert cuda_from_nvml(11040) == (11, 4)  # driver 470.86, as in Fooocus#1313
    assert cuda_from_nvml(None) is None


def test_min_driver_exact_and_between() -> None:
    assert min_driver_for((12, 8)) == "570.26"
    assert min_driver_for((12, 7)) == "560.28.03"  # unlisted minor: nearest listed below
    assert min_driver_for((10, 2)) is None


@pytest.mark.parametrize(
    ("archs", "cc", "ok"),
    [
        (("sm_80", "sm_90"), (9, 0), True),
        (("sm_80", "sm_90"), (8, 6), True),  # sm_80 cubin runs on 8.6
        (("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"), (12, 0), False),
        (("sm_90", "compute_90"), (12, 0), True),  # PTX JITs forward
        (("sm_75", "sm_80", "sm_90", "sm_100", "sm_120"), (12, 0), True),
        (("sm_70", "sm_75", "sm_80"), (6, 1), False),  # Pascal on cu128
        (("sm_86",), (8, 0), False),  # a newer minor cubin does not run on an older minor
    ],
)
def test_arch_supports(archs: tuple[str, ...], cc: tuple[int, int], ok: bool) -> None:
    assert arch_supports(archs, cc) is ok


def test_recommend_wheel_follows_driver_and_cc() -> None:
    w = recommend_torch_wheel((13, 0), (9, 0))
    assert w is not None and w.tag == "cu130"
    w = recommend_torch_wheel((12, 8), (12, 0))
    assert w is not None and w.tag == "cu128"
    w = recommend_torch_wheel((12, 6), (8, 6))
    assert w is not None and w.tag == "cu126"
    w = recommend_torch_wheel((13, 0), (6, 1))  # Pascal: cu126 still has sm_60
    assert w is not None and w.tag == "cu126"
    assert recommend_torch_wheel((12, 6), (12, 0)) is None  # no wheel for Blackwell on 12.6
    assert "whl/cu130" in torch_install_command(recommend_torch_wheel((13, 1), (9, 0)))
    assert "upgrade the driver" in torch_install_command(None)
