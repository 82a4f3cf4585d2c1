"""The function a worker process runs: one workload, one device, one implementation.

It takes and returns plain values only (a dict in, a dict out) because it crosses a
process boundary (``gpuscout.isolate``). Everything heavy is imported here, in the
worker, never in the parent.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType
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


def load_target(target: str, file: str | None = None) -> Any:
    """The function "module:qualname" names: its module imported by name, or, when that
    name is not importable here, loaded from ``file`` (a workload registered from a
    module outside any package on the path)."""
    module_name, qualname = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if file is None or exc.name != module_name:
            raise
        module = _load_file(module_name, file)
    fn: Any = module
    for part in qualname.split("."):
        fn = getattr(fn, part)
    return fn


def _load_file(module_name: str, file: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {module_name} from {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # before running it: a dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def run_one(
    cfg: dict[str, Any], target: str | None = None, file: str | None = None
) -> dict[str, Any]:
    """Run ``WorkloadConfig(**cfg)``; returns ``{"figures": [...], "env": {...}}``.

    ``target`` ("module:qualname" of the workload's ``run``) and ``file`` come from the
    parent for a workload registered there; None: the workload's own record."""
    config = WorkloadConfig(**cfg)
    if target is None:
        from gpuscout.workloads import registry

        run = registry.get(config.name).run
    else:
        run = load_target(target, file)
    device = setup_device(config)
    seed_all(config.seed)
    # IEEE fp32 wherever a run computes in fp32: what its results say it ran in.
    with strict_fp32(), _instruments(device) as inst:
        figures = run(config, inst)
    return {"figures": figures, "env": environment(device)}


def run_comparison(cfg: dict[str, Any], target: str, file: str | None = None) -> dict[str, Any]:
    """The optional third-party program beside a workload (its record's comparison)."""
    config = WorkloadConfig(**cfg)
    return {"figures": load_target(target, file)(config), "env": {}}
