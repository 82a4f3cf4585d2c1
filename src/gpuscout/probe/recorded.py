"""Recorded machines: a whole probe as JSON, replayed through the real probe code.

``load_machine`` turns a file (``tests/fixtures/machines/*.json``, or one a user wrote
with ``record_machine``) into a FakeNvml, a fake framework runner, a HostInfo and an
environment, so ``probe_system`` runs unchanged over a machine that is not here.

Format (version 1)::

    {"format": 1, "name": "h100", "description": "...",
     "host": {HostInfo fields}, "environ": {"CUDA_VISIBLE_DEVICES": "0"},
     "nvml": {see gpuscout.probe.fake_nvml},
     "frameworks": {"torch": {raw probe-script dict}, ...}}   # absent = not installed
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpuscout._types import GpuInfo, HostInfo, NvidiaInfo, NvmlState, SystemInfo, to_jsonable
from gpuscout.errors import UsageError
from gpuscout.probe.fake_nvml import FakeNvml, error_spec
from gpuscout.probe.frameworks import (
    DEFAULT_FRAMEWORKS,
    DEFAULT_TIMEOUT_S,
    FrameworkRunner,
    fake_runner_from,
    is_installed,
    subprocess_runner,
)
from gpuscout.probe.host import probe_host
from gpuscout.probe.nvml import GPU_FIELD_ORDER, probe_nvidia
from gpuscout.probe.system import ENV_VARS, probe_system

FORMAT = 1
_HINT = "give a JSON file written by gpuscout (see tests/fixtures/machines/ for examples)"


@dataclass(frozen=True)
class RecordedMachine:
    name: str
    description: str
    host: HostInfo
    environ: Mapping[str, str]
    nvml: FakeNvml
    runner: FrameworkRunner
    data: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def probe(
        self,
        *,
        mem_mts: int | None = None,
        mem_channels: int | None = None,
        frameworks: Sequence[str] = DEFAULT_FRAMEWORKS,
    ) -> SystemInfo:
        return probe_system(
            nvml=self.nvml,
            framework_runner=self.runner,
            host=self.host,
            environ=self.environ,
            mem_mts=mem_mts,
            mem_channels=mem_channels,
            frameworks=frameworks,
        )


_HOST_DEFAULTS: dict[str, Any] = {
    "cpu_model": "unknown",
    "arch": "unknown",
    "physical_cores": None,
    "logical_cores": None,
    "base_clock_mhz": None,
    "max_clock_mhz": None,
    "isa": (),
    "ram_total_bytes": None,
    "ram_available_bytes": None,
    "os_name": "unknown",
    "os_release": "",
    "os_pretty": "unknown",
    "python_version": "",
    "container": None,
    "wsl": False,
}


def host_from_dict(data: Mapping[str, Any]) -> HostInfo:
    """A HostInfo from its JSON form; missing keys get neutral defaults."""
    known = {f.name for f in dataclasses.fields(HostInfo)}
    values = {**_HOST_DEFAULTS, **{k: v for k, v in data.items() if k in known}}
    values["isa"] = tuple(str(x) for x in values["isa"] or ())
    values["unavailable"] = dict(values.get("unavailable") or {})
    return HostInfo(**values)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"machine file {str(path)!r} does not exist", _HINT) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read machine file {str(path)!r}: {exc}", _HINT) from None


def load_machine(path_or_dict: str | Path | Mapping[str, Any]) -> RecordedMachine:
    """Load a recorded machine. Bad files raise UsageError (one line, with a hint)."""
    if isinstance(path_or_dict, Mapping):
        data: Any = path_or_dict
        default_name = "machine"
    else:
        path = Path(path_or_dict)
        data = _read_json(path)
        default_name = path.stem
    if not isinstance(data, Mapping):
        raise UsageError("a machine file must hold one JSON object", _HINT)
    fmt = data.get("format", FORMAT)
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise UsageError(f"machine file format {fmt!r} is newer than this gpuscout reads", _HINT)
    try:
        # No "nvml" section means a machine without the NVIDIA library, as on a laptop.
        nvml_data = data.get("nvml") or {"init_error": "LIBRARY_NOT_FOUND"}
        nvml = FakeNvml(nvml_data)
        host = host_from_dict(data.get("host") or {})
        environ = {str(k): str(v) for k, v in (data.get("environ") or {}).items()}
    except (TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"malformed machine data: {exc}", _HINT) from None
    return RecordedMachine(
        name=str(data.get("name") or default_name),
        description=str(data.get("description") or ""),
        host=host,
        environ=environ,
        nvml=nvml,
        runner=fake_runner_from(data),
        data=data,
    )


def probe_recorded(path_or_dict: str | Path | Mapping[str, Any], **kwargs: Any) -> SystemInfo:
    """``probe_system`` over a recorded machine (kwargs as ``RecordedMachine.probe``)."""
    return load_machine(path_or_dict).probe(**kwargs)


def _jsonable_value(value: Any) -> Any:
    return [_jsonable_value(v) for v in value] if isinstance(value, tuple) else value


def gpu_to_dict(gpu: GpuInfo) -> dict[str, Any]:
    """A GpuInfo as a FakeNvml device that replays to an equal GpuInfo."""
    fields = GPU_FIELD_ORDER[:-1]  # all but "processes", which is read last
    read_any = bool(gpu.unavailable) or any(getattr(gpu, f) is not None for f in fields)
    if (gpu.lost or gpu.error) and not read_any:
        return {"handle_error": error_spec(None, gpu.error), "errors": {}}
    dev: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for name in fields:
        value = getattr(gpu, name)
        if value is not None:
            dev[name] = _jsonable_value(value)
        elif name in gpu.unavailable:
            errors[name] = error_spec(None, gpu.unavailable[name])
    dev["processes"] = [
        {"pid": p.pid, "used_memory_bytes": p.used_memory_bytes, "name": p.name}
        for p in gpu.processes
    ]
    if "processes" in gpu.unavailable:
        errors["processes"] = error_spec(None, gpu.unavailable["processes"])
    if gpu.lost:
        # The first field neither read nor explained is where the GPU went away.
        dev["lost_at"] = next((f for f in fields if f not in dev and f not in errors), "processes")
        dev["lost_error"] = error_spec(None, gpu.error)
    dev["errors"] = errors
    return dev


def nvidia_to_dict(info: NvidiaInfo) -> dict[str, Any]:
    """An NvidiaInfo as the ``nvml`` section of a machine file."""
    out: dict[str, Any] = {
        "init_error": None,
        "driver_version": info.driver_version,
        "cuda_driver_version": info.cuda_driver_version,
        "nvml_version": info.nvml_version,
        "errors": {},
        "devices": [gpu_to_dict(g) for g in info.gpus],
    }
    if info.state is not NvmlState.OK:
        if info.driver_version is None and not info.gpus:
            out["init_error"] = error_spec(None, info.error)
        else:  # initialised, then failed to count the GPUs
            text = (info.error or "").removeprefix("cannot count GPUs: ")
            out["errors"]["device_count"] = error_spec(None, text)
    return out


def record_machine(
    *,
    nvml: Any | None = None,
    frameworks: Sequence[str] = DEFAULT_FRAMEWORKS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    runner: FrameworkRunner | None = None,
    host: HostInfo | None = None,
    environ: Mapping[str, str] | None = None,
    name: str = "recorded",
    description: str = "",
) -> dict[str, Any]:
    """Capture this machine in the machine-file format (for bug reports and fixtures).

    NVML values are read by the real probe and written back as the raw figures FakeNvml
    serves, so replaying the file gives the same NvidiaInfo. Only the environment
    variables that change what frameworks see are kept, never the whole environment.
    """
    import os

    env = os.environ if environ is None else environ
    host = host or probe_host(environ=env)
    raws: dict[str, Any] = {}
    for fw in frameworks:
        if runner is None and not is_installed(fw):
            continue  # absent from the file = not installed
        try:
            raws[fw] = (runner or subprocess_runner)(fw, timeout_s)
        except TimeoutError as exc:
            raws[fw] = {"_raise": "timeout", "message": str(exc)}
        except Exception as exc:
            raws[fw] = {"_raise": "error", "message": str(exc) or type(exc).__name__}
    return {
        "format": FORMAT,
        "name": name,
        "description": description,
        "host": to_jsonable(host),
        "environ": {var: env[var] for var in ENV_VARS.values() if var in env},
        "nvml": nvidia_to_dict(probe_nvidia(nvml)),
        "frameworks": raws,
    }
