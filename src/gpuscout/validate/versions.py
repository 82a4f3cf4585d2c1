"""gpu_check's first step: what this machine runs, as one JSON object on stdout.

    python -m gpuscout.validate.versions > versions.json

Python, gpuscout, torch with its CUDA build and the devices it sees, and the NVIDIA
driver and GPUs as NVML reports them (nvidia-ml-py, when installed; nvidia-smi's text is
never parsed). Whatever cannot be read is recorded with why, and the exit code stays 0:
a machine without torch or a GPU still gets its versions written.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import sys
from typing import Any


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def torch_versions() -> dict[str, Any]:
    try:
        import torch
    except Exception as exc:  # not installed, or broken: say so
        return {"error": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {"version": torch.__version__, "cuda_build": torch.version.cuda}
    try:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        out |= {"cuda_available": count > 0, "devices": []}
        for i in range(count):
            p = torch.cuda.get_device_properties(i)
            cc = f"{p.major}.{p.minor}"
            dev = {"index": i, "name": p.name, "capability": cc, "memory_bytes": p.total_memory}
            out["devices"].append(dev)
    except Exception as exc:  # a driver that torch cannot use
        out["cuda_error"] = f"{type(exc).__name__}: {exc}"
    return out


def nvml_versions() -> dict[str, Any]:
    try:
        import pynvml
    except ImportError as exc:
        return {"error": f"nvidia-ml-py is not installed ({exc})"}
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # no driver: NVMLError_LibraryNotFound and kin
        return {"error": f"{type(exc).__name__}: {exc}"}
    try:
        out: dict[str, Any] = {"driver": _text(pynvml.nvmlSystemGetDriverVersion())}
        out["cuda_driver_version"] = int(pynvml.nvmlSystemGetCudaDriverVersion())
        out["gpus"] = []
        for i in range(int(pynvml.nvmlDeviceGetCount())):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h).total
            name = _text(pynvml.nvmlDeviceGetName(h))
            out["gpus"].append({"index": i, "name": name, "memory_total_bytes": int(mem)})
        return out
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        pynvml.nvmlShutdown()


def versions() -> dict[str, Any]:
    from gpuscout import __version__

    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "gpuscout": __version__,
        "torch": torch_versions(),
        "nvml": nvml_versions(),
    }


def main() -> int:
    print(json.dumps(versions(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
