"""Deep-learning frameworks, each probed in its own subprocess with a timeout.

The child is ``sys.executable -c <script>`` with this process's environment unchanged, so
``CUDA_VISIBLE_DEVICES`` and friends act exactly as they would for the user's program.
A framework that ``importlib.util.find_spec`` cannot find costs no subprocess at all.
The runner is injectable (``runner(name, timeout_s) -> raw dict``), which is how tests
and recorded machines replay a framework without running it.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gpuscout._types import FrameworkInfo
from gpuscout.errors import UnknownNameError, UsageError
from gpuscout.probe.torch_env import PRELUDE, TORCH_SCRIPT, format_cudnn_version

FrameworkRunner = Callable[[str, float], dict[str, Any]]
MARK = "__GPUSCOUT_JSON__"
DEFAULT_FRAMEWORKS: tuple[str, ...] = ("torch", "tensorflow", "jax")
DEFAULT_TIMEOUT_S = 60.0

TENSORFLOW_SCRIPT = (
    PRELUDE
    + r"""
try:
    import tensorflow as tf
except ModuleNotFoundError as exc:
    emit({"name": "tensorflow", "installed": False, "error": first_line(exc)})
    sys.exit(0)
out = {"name": "tensorflow", "installed": True, "version": str(tf.__version__), "extra": {}}
info = dict(attempt(out, "build_info", tf.sysconfig.get_build_info) or {})
out["cuda_build"] = info.get("cuda_version")
out["cudnn_version"] = info.get("cudnn_version")
out["extra"]["is_cuda_build"] = info.get("is_cuda_build")
out["extra"]["is_rocm_build"] = info.get("is_rocm_build")
out["extra"]["cuda_compute_capabilities"] = info.get("cuda_compute_capabilities")
gpus = attempt(out, "list_devices", lambda: tf.config.list_physical_devices("GPU")) or []
out["gpu_available"] = len(gpus) > 0
out["device_count"] = len(gpus)
details = [attempt(out, "details", lambda g=g: tf.config.experimental.get_device_details(g))
           or {} for g in gpus]
out["device_names"] = [d.get("device_name") or g.name for d, g in zip(details, gpus)]
out["device_capabilities"] = [list(d["compute_capability"]) for d in details
                              if d.get("compute_capability")]
if gpus:
    try:
        with tf.device("/GPU:0"):
            out["kernel_ok"] = float(tf.reduce_sum(tf.ones([4]) + 1)) == 8.0
    except Exception as exc:
        out["kernel_ok"], out["kernel_error"] = False, first_line(exc)
emit(out)
"""
)

JAX_SCRIPT = (
    PRELUDE
    + r"""
try:
    import jax
except ModuleNotFoundError as exc:
    emit({"name": "jax", "installed": False, "error": first_line(exc)})
    sys.exit(0)
import importlib.util
out = {"name": "jax", "installed": True, "version": str(jax.__version__), "extra": {}}
jaxlib = attempt(out, "jaxlib", lambda: __import__("jaxlib"))
out["extra"]["jaxlib_version"] = getattr(jaxlib, "__version__", None)
plugins = [p for p in ("jax_cuda13_plugin", "jax_cuda12_plugin", "jax_rocm60_plugin")
           if importlib.util.find_spec(p) is not None]
out["extra"]["plugins"] = plugins
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    devices = attempt(out, "devices", jax.devices) or []
    out["extra"]["default_backend"] = attempt(out, "backend", jax.default_backend)
out["extra"]["warnings"] = list(dict.fromkeys(str(w.message) for w in caught))
out["extra"]["devices"] = [str(d) for d in devices]
gpus = [d for d in devices if getattr(d, "platform", "") in ("gpu", "cuda", "rocm")]
out["gpu_available"] = len(gpus) > 0
out["device_count"] = len(gpus)
out["device_names"] = [str(getattr(d, "device_kind", d)) for d in gpus]
caps = [getattr(d, "compute_capability", None) for d in gpus]
out["device_capabilities"] = [[int(x) for x in str(c).split(".")[:2]] for c in caps if c]
def cuda_versions():
    from jax._src.lib import cuda_versions as cv
    return {"runtime": cv.cuda_runtime_get_version(), "cudnn": cv.cudnn_get_version()}
versions = attempt(out, "cuda_versions", cuda_versions) if plugins else None
if versions and versions.get("runtime"):
    rt = int(versions["runtime"])
    out["cuda_build"] = "%d.%d" % (rt // 1000, (rt % 1000) // 10)
    out["cudnn_version"] = versions.get("cudnn")
elif plugins and "cuda" in plugins[0]:
    out["cuda_build"] = plugins[0].split("cuda")[1].split("_")[0]
if gpus:
    try:
        import jax.numpy as jnp
        x = jax.device_put(jnp.ones(4), gpus[0])
        out["kernel_ok"] = float((x + 1).sum()) == 8.0
    except Exception as exc:
        out["kernel_ok"], out["kernel_error"] = False, first_line(exc)
emit(out)
"""
)

SCRIPTS: dict[str, str] = {
    "torch": TORCH_SCRIPT,
    "tensorflow": TENSORFLOW_SCRIPT,
    "jax": JAX_SCRIPT,
}


class FrameworkProbeError(Exception):
    """The probe script crashed or printed no result; the message is its last words."""


def _kill(proc: subprocess.Popen[str]) -> None:
    # The child ran in its own session, so its whole group (helpers, compilers) goes.
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def run_framework_script(
    script: str, timeout_s: float, *, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter; return its ``MARK`` JSON object.

    Raises TimeoutError after ``timeout_s`` (the child's process group is killed) and
    FrameworkProbeError when the child prints no result.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=None if env is None else dict(env),
        start_new_session=os.name == "posix",
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.communicate()
        raise TimeoutError(f"no answer within {timeout_s:g} s") from None
    except BaseException:  # Ctrl-C, SIGTERM: its own session hears neither, so it goes too
        _kill(proc)
        proc.wait()
        raise
    for line in reversed(out.splitlines()):
        if line.startswith(MARK):
            try:
                raw = json.loads(line[len(MARK) :])
            except json.JSONDecodeError as exc:
                raise FrameworkProbeError(f"unreadable probe output: {exc}") from None
            if proc.returncode:
                # It answered, then died on the way out (seen with some TF builds): keep it.
                raw.setdefault("extra", {})["exit_code"] = proc.returncode
            return dict(raw)
    last = next((ln.strip() for ln in reversed(err.splitlines()) if ln.strip()), "")
    raise FrameworkProbeError(last or f"exited with code {proc.returncode} and no output")


def subprocess_runner(name: str, timeout_s: float) -> dict[str, Any]:
    """The default runner: the script for ``name`` in a subprocess."""
    return run_framework_script(SCRIPTS[name], timeout_s)


def _tuple_of_str(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or () if v is not None)


def _opt(value: Any, kind: Callable[[Any], Any]) -> Any:
    return None if value is None else kind(value)


_FIELDS = {f.name for f in dataclasses.fields(FrameworkInfo)}


def framework_info_from_raw(name: str, raw: Mapping[str, Any]) -> FrameworkInfo:
    """Turn a probe script's dict (or a recorded one) into a FrameworkInfo."""
    extra = dict(raw.get("extra") or {})
    # Keys we do not model are kept, not dropped: a newer script may know more.
    extra.update({k: v for k, v in raw.items() if k not in _FIELDS})
    caps = tuple(
        (int(c[0]), int(c[1]))
        for c in raw.get("device_capabilities") or ()
        if isinstance(c, (list, tuple)) and len(c) >= 2
    )
    return FrameworkInfo(
        name=name,
        installed=bool(raw.get("installed", True)),
        version=_opt(raw.get("version"), str),
        error=_opt(raw.get("error"), str),
        timed_out=bool(raw.get("timed_out", False)),
        cuda_build=_opt(raw.get("cuda_build"), str) or None,
        hip_build=_opt(raw.get("hip_build"), str) or None,
        cudnn_version=format_cudnn_version(raw.get("cudnn_version")),
        arch_list=_tuple_of_str(raw.get("arch_list")),
        gpu_available=_opt(raw.get("gpu_available"), bool),
        device_count=_opt(raw.get("device_count"), int),
        device_names=_tuple_of_str(raw.get("device_names")),
        device_capabilities=caps,
        mps_built=_opt(raw.get("mps_built"), bool),
        mps_available=_opt(raw.get("mps_available"), bool),
        kernel_ok=_opt(raw.get("kernel_ok"), bool),
        kernel_error=_opt(raw.get("kernel_error"), str),
        extra=extra,
    )


def _check_names(names: Sequence[str]) -> None:
    for name in names:
        if name not in SCRIPTS:
            close = difflib.get_close_matches(name, list(SCRIPTS), n=3)
            raise UnknownNameError("framework", name, close or sorted(SCRIPTS))


def is_installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken or half-removed package
        return True  # let the subprocess say what is wrong with it


def probe_one(name: str, timeout_s: float, runner: FrameworkRunner | None) -> FrameworkInfo:
    if runner is None:
        if not is_installed(name):
            return FrameworkInfo(name, installed=False)
        runner = subprocess_runner
    try:
        raw = runner(name, timeout_s)
    except TimeoutError as exc:
        return FrameworkInfo(name, installed=True, timed_out=True, error=f"probe timed out: {exc}")
    except Exception as exc:
        return FrameworkInfo(name, installed=True, error=str(exc) or type(exc).__name__)
    if not isinstance(raw, Mapping):
        return FrameworkInfo(name, installed=True, error=f"probe returned {type(raw).__name__}")
    return framework_info_from_raw(name, raw)


def probe_frameworks(
    names: Sequence[str] = DEFAULT_FRAMEWORKS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    runner: FrameworkRunner | None = None,
) -> tuple[FrameworkInfo, ...]:
    """Probe each framework (concurrently: each import takes seconds), in ``names`` order.

    Unknown names raise UnknownNameError; everything else becomes a FrameworkInfo.
    """
    names = tuple(names)
    _check_names(names)
    if timeout_s <= 0:
        raise UsageError(f"the framework probe timeout must be positive, got {timeout_s:g}")
    if not names:
        return ()
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return tuple(pool.map(lambda n: probe_one(n, timeout_s, runner), names))


def fake_runner_from(machine: Mapping[str, Any]) -> FrameworkRunner:
    """A runner that answers from a recorded machine's ``frameworks`` section.

    A framework missing from the recording is not installed. ``{"_raise": "timeout"}``
    replays a hang and ``{"_raise": "error", "message": ...}`` a crash.
    """
    recorded: Mapping[str, Any] = machine.get("frameworks") or {}

    def runner(name: str, timeout_s: float) -> dict[str, Any]:
        raw = recorded.get(name)
        if raw is None:
            return {"name": name, "installed": False}
        if raw.get("_raise") == "timeout":
            raise TimeoutError(raw.get("message") or f"no answer within {timeout_s:g} s")
        if raw.get("_raise"):
            raise FrameworkProbeError(raw.get("message") or "the probe crashed")
        return dict(raw)

    return runner
