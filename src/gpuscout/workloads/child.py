"""The function a worker process runs: one workload, one device, one implementation.

It takes and returns plain values only (a dict in, a dict out) because it crosses a
process boundary (``gpuscout.isolate``). Everything heavy is imported here, in the
worker, never in the parent.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from gpuscout.workloads.base import WorkloadConfig, seed_all, setup_device, strict_fp32


@contextlib.contextmanager
def _instruments(device: Any) -> Iterator[Any]:
    from gpuscout.workloads.instruments import Instruments, nvml_reader_for

    if device.type != "cuda":
        with Instruments(device) as inst:
            yield inst
        return
    with nvml_reader_for(device.index or 0) as reader, Instruments(device, reader) as inst:
        yield inst


def environment(device: Any) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "torch_version": str(torch.__version__),  # a plain str: the parent unpickles without torch
        "threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env["device_name"] = props.name
        env["compute_capability"] = f"{props.major}.{props.minor}"
        env["memory_total_bytes"] = int(props.total_memory)
        env["cuda_version"] = torch.version.cuda
    try:
        import resource
    except ImportError:  # Windows
        return env
    # ru_maxrss is kilobytes on Linux (bytes on macOS): the worker's peak host memory.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    env["peak_rss_bytes"] = rss if sys.platform == "darwin" else rss * 1024
    return env


def run_one(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run ``WorkloadConfig(**cfg)``; returns ``{"figures": [...], "env": {...}}``."""
    from gpuscout.workloads import registry

    config = WorkloadConfig(**cfg)
    module = registry.get(config.name)
    device = setup_device(config)
    seed_all(config.seed)
    # IEEE fp32 wherever a run computes in fp32: what its results say it ran in.
    with strict_fp32(), _instruments(device) as inst:
        figures = module.run(config, inst)
    return {"figures": figures, "env": environment(device)}


def run_comparison(cfg: dict[str, Any]) -> dict[str, Any]:
    """The optional third-party program beside a workload (Keras for mlp, HF for llm)."""
    from gpuscout.workloads import third_party

    config = WorkloadConfig(**cfg)
    return {"figures": third_party.run(config), "env": {}}
