"""Device words (cpu, cuda, cuda:N, all) -> the devices a command runs on, in order."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from gpuscout.errors import UsageError
from gpuscout.probe.devices import DEVICE_HINT, resolve_devices

TWO_GPUS = ["cpu", "cuda:0", "cuda:1"]


def have(devices: Sequence[str]) -> list[str]:
    return list(devices)


def never_asked() -> list[str]:
    raise AssertionError("the framework was asked what exists")


@pytest.mark.parametrize(
    ("spec", "devices"),
    [
        (None, TWO_GPUS),
        ([], TWO_GPUS),
        ("", TWO_GPUS),
        (" , ", TWO_GPUS),
        ("all", TWO_GPUS),
        ("cuda", ["cuda:0", "cuda:1"]),
        ("cuda,all", ["cuda:0", "cuda:1", "cpu"]),
        ("cuda:1,cuda", ["cuda:1", "cuda:0"]),
        ("CUDA:1, cpu", ["cuda:1", "cpu"]),
        (["cpu", "cuda:1"], ["cpu", "cuda:1"]),
        (["cuda:0,cuda:0", "all"], ["cuda:0", "cpu", "cuda:1"]),
    ],
)
def test_words_become_devices_in_order_once_each(
    spec: str | list[str] | None, devices: list[str]
) -> None:
    assert resolve_devices(spec, lambda: have(TWO_GPUS)) == devices


@pytest.mark.parametrize("spec", ["cpu", " CPU ", "cpu,cpu", ["cpu", "cpu"]])
def test_cpu_alone_does_not_ask_the_framework(spec: str | list[str]) -> None:
    assert resolve_devices(spec, never_asked) == ["cpu"]


def test_cpu_is_always_there_even_when_the_framework_lists_gpus_only() -> None:
    assert resolve_devices("cpu,cuda", lambda: ["cuda:0"]) == ["cpu", "cuda:0"]


@pytest.mark.parametrize(
    ("spec", "available", "message", "hint"),
    [
        ("gpu", never_asked, "unknown device 'gpu'", DEVICE_HINT),
        ("cpu,Cuda:x", never_asked, "unknown device 'cuda:x'", DEVICE_HINT),
        ("cuda", lambda: ["cpu"], "no CUDA GPU is visible to PyTorch", "run `gpuscout doctor`"),
        (
            "cuda:3",
            lambda: TWO_GPUS,
            "no such device 'cuda:3': this machine has cuda:0, cuda:1",
            DEVICE_HINT,
        ),
        ("cuda:0", lambda: ["cpu"], "no such device 'cuda:0': no CUDA GPU is visible", DEVICE_HINT),
    ],
)
def test_what_cannot_be_used_is_a_usage_error(
    spec: str, available: Callable[[], Sequence[str]], message: str, hint: str
) -> None:
    with pytest.raises(UsageError) as exc:
        resolve_devices(spec, available)
    assert (exc.value.message, exc.value.hint) == (message, hint)
