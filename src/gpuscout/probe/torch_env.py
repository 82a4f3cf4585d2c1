"""What PyTorch says about itself, asked in a fresh subprocess.

A fresh process matters: ``CUDA_VISIBLE_DEVICES`` only counts before CUDA initialises
(pytorch#9158), and an in-process ``torch.cuda.is_available()`` would both hide the bug
it looks for and create a CUDA context in the caller. This module never imports torch;
it only holds the script the child runs (see ``frameworks.run_framework_script``).

The child prints one line ``__GPUSCOUT_JSON__{...}`` whose keys are ``FrameworkInfo``
field names. Two choices in it matter to readers of the result:

* ``arch_list`` comes from ``torch._C._cuda_getArchFlags()``, which answers even when
  CUDA cannot start (``get_arch_list()`` returns ``[]`` then, hiding the wheel's build).
* When a GPU build sees no device, the child still tries one allocation on ``cuda``, so
  the reason lands in ``kernel_ok=False`` / ``kernel_error`` ("driver too old", "no CUDA
  GPUs are available"). On a machine with no NVIDIA driver at all that is expected; the
  doctor reads it together with the NVML state.
"""

from __future__ import annotations

# Shared by every framework script: the marker line and the one-line error format.
PRELUDE = r"""
import json, sys, warnings
MARK = "__GPUSCOUT_JSON__"

def emit(obj):
    sys.stdout.write("\n" + MARK + json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()

def first_line(exc):
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else ""
    return type(exc).__name__ + (": " + text if text else "")

def attempt(out, key, fn):
    try:
        return fn()
    except Exception as exc:
        out.setdefault("extra", {})[key + "_error"] = first_line(exc)
        return None
"""

TORCH_SCRIPT = (
    PRELUDE
    + r"""
try:
    import torch
except ModuleNotFoundError as exc:
    emit({"name": "torch", "installed": False, "error": first_line(exc)})
    sys.exit(0)

def kernel(device):
    try:
        ok = (torch.ones(4, device=device) + 1).sum().item() == 8
        return ok, None if ok else "wrong result from a tiny kernel on " + device
    except Exception as exc:
        return False, first_line(exc)

out = {"name": "torch", "installed": True, "extra": {}}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    out["version"] = str(torch.__version__)
    out["cuda_build"] = torch.version.cuda
    out["hip_build"] = getattr(torch.version, "hip", None)
    out["cudnn_version"] = attempt(out, "cudnn", torch.backends.cudnn.version)
    get_flags = getattr(torch._C, "_cuda_getArchFlags", None)  # absent in CPU builds
    flags = attempt(out, "arch_list", get_flags) if get_flags else None
    if not flags:
        flags = " ".join(attempt(out, "arch_list", torch.cuda.get_arch_list) or [])
    out["arch_list"] = str(flags).split() if flags else []
    out["gpu_available"] = bool(attempt(out, "is_available", torch.cuda.is_available))
    n = attempt(out, "device_count", torch.cuda.device_count) or 0
    out["device_count"] = n
    out["device_names"] = [attempt(out, "name", lambda i=i: torch.cuda.get_device_name(i))
                           for i in range(n)]
    out["device_capabilities"] = [
        attempt(out, "capability", lambda i=i: list(torch.cuda.get_device_capability(i)))
        for i in range(n)
    ]
    mps = getattr(torch.backends, "mps", None)
    out["mps_built"] = bool(mps and attempt(out, "mps_built", mps.is_built))
    out["mps_available"] = bool(mps and attempt(out, "mps_available", mps.is_available))
    results = [kernel("cuda:%d" % i) for i in range(n)]
    if n == 0 and (out["cuda_build"] or out["hip_build"]):
        results = [kernel("cuda")]  # only to learn why no device is usable
    elif n == 0 and out["mps_available"]:
        results = [kernel("mps")]
    if results:
        out["kernel_ok"] = all(ok for ok, _ in results)
        errors = [err for _, err in results if err]
        out["kernel_error"] = errors[0] if errors else None
        out["extra"]["kernel_errors"] = [err for _, err in results]
    if hasattr(torch.cuda, "is_bf16_supported") and out["gpu_available"]:
        out["extra"]["bf16_supported"] = attempt(out, "bf16", torch.cuda.is_bf16_supported)
out["extra"]["warnings"] = list(dict.fromkeys(str(w.message) for w in caught))
emit(out)
"""
)


def format_cudnn_version(value: object) -> str | None:
    """cuDNN's integer version as text: 8902 -> "8.9.2", 90100 -> "9.1.0"."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return str(value)
    if value >= 90000:  # cuDNN 9 changed the encoding to major*10000 + minor*100 + patch
        return f"{value // 10000}.{(value % 10000) // 100}.{value % 100}"
    return f"{value // 1000}.{(value % 1000) // 100}.{value % 100}"
