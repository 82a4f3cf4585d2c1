"""Framework probes: a real torch subprocess, fake runners, timeouts, crashes, stubs."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gpuscout.errors import UnknownNameError, UsageError
from gpuscout.probe.frameworks import (
    JAX_SCRIPT,
    TENSORFLOW_SCRIPT,
    FrameworkProbeError,
    fake_runner_from,
    framework_info_from_raw,
    probe_frameworks,
    run_framework_script,
)
from gpuscout.probe.torch_env import TORCH_SCRIPT, format_cudnn_version


def test_real_torch_cpu_build_in_a_subprocess() -> None:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    (info,) = probe_frameworks(("torch",), timeout_s=120.0)
    assert info.installed and info.error is None and not info.timed_out
    assert info.version is not None and info.version[0].isdigit()
    if info.cuda_build is not None or info.hip_build is not None:
        pytest.skip("this torch is a GPU build")
    assert info.gpu_available is False and info.device_count == 0 and info.arch_list == ()
    if sys.platform != "darwin":  # Apple-silicon wheels may run the tiny kernel on MPS
        assert info.kernel_ok is None and info.mps_available is False


def test_framework_not_installed_costs_no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    import gpuscout.probe.frameworks as fw

    if importlib.util.find_spec("jax") is not None:
        pytest.skip("jax is installed here")

    def no_subprocess(name: str, timeout_s: float) -> dict[str, Any]:
        raise AssertionError(f"started a subprocess for {name}")

    monkeypatch.setattr(fw, "subprocess_runner", no_subprocess)
    (info,) = probe_frameworks(("jax",))
    assert info.installed is False and info.error is None


def test_fake_runner_and_raw_parsing() -> None:
    machine = {
        "frameworks": {
            "torch": {
                "installed": True,
                "version": "2.11.0+cu130",
                "cuda_build": "13.0",
                "cudnn_version": 91300,
                "arch_list": ["sm_80", "sm_90"],
                "gpu_available": True,
                "device_count": 1,
                "device_names": ["NVIDIA H100 80GB HBM3"],
                "device_capabilities": [[9, 0]],
                "kernel_ok": True,
                "something_new": 42,
            },
            "jax": {"_raise": "timeout"},
            "tensorflow": {"_raise": "error", "message": "Segmentation fault"},
        }
    }
    torch, tf, jax = probe_frameworks(runner=fake_runner_from(machine))
    assert torch.name == "torch" and torch.cudnn_version == "9.13.0"
    assert torch.arch_list == ("sm_80", "sm_90") and torch.device_capabilities == ((9, 0),)
    assert torch.kernel_ok is True and torch.extra["something_new"] == 42
    assert jax.timed_out and jax.installed and jax.error is not None
    assert tf.installed and tf.error == "Segmentation fault" and not tf.timed_out
    (missing,) = probe_frameworks(("jax",), runner=fake_runner_from({}))
    assert missing.installed is False


def test_runner_exceptions_become_records() -> None:
    def runner(name: str, timeout_s: float) -> dict[str, Any]:
        if name == "torch":
            raise TimeoutError("no answer within 0.1 s")
        raise RuntimeError("boom")

    torch, tf = probe_frameworks(("torch", "tensorflow"), timeout_s=0.1, runner=runner)
    assert torch.timed_out and "0.1 s" in (torch.error or "")
    assert tf.error == "boom" and not tf.timed_out


def test_unknown_framework_and_bad_timeout() -> None:
    with pytest.raises(UnknownNameError) as exc:
        probe_frameworks(("pytorch",))
    assert "torch" in exc.value.suggestions
    with pytest.raises(UsageError):
        probe_frameworks(("torch",), timeout_s=0)


def test_timeout_kills_a_hanging_probe_quickly() -> None:
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        run_framework_script("import time; time.sleep(30)", 0.5)
    assert time.monotonic() - t0 < 10

    def runner(name: str, timeout_s: float) -> dict[str, Any]:
        return run_framework_script("import time; time.sleep(30)", timeout_s)

    (info,) = probe_frameworks(("torch",), timeout_s=0.3, runner=runner)
    assert info.timed_out and info.installed


def test_ctrl_c_during_a_probe_takes_the_probe_with_it(tmp_path: Path) -> None:
    """The probe runs in its own session (no terminal's Ctrl-C reaches it): it must go
    when gpuscout is interrupted, not run on alone."""
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )

    def interrupt_once_started() -> None:
        while not pid_file.exists() or not pid_file.read_text():
            time.sleep(0.01)
        # A real SIGINT to the main thread, as a terminal's Ctrl-C: it breaks the wait
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever pytest had
    try:
        threading.Thread(target=interrupt_once_started, daemon=True).start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_framework_script(script, 120)
    finally:
        signal.signal(signal.SIGINT, before)
    assert time.monotonic() - t0 < 50  # it did not wait for the probe's 60 s
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(int(pid_file.read_text()), 0)


def test_crashing_script_reports_its_last_words() -> None:
    script = (
        "import sys; sys.stderr.write('Traceback...\\nImportError: libcudnn.so.9\\n'); sys.exit(3)"
    )
    with pytest.raises(FrameworkProbeError, match=r"ImportError: libcudnn\.so\.9"):
        run_framework_script(script, 30)
    with pytest.raises(FrameworkProbeError, match="exited with code 4"):
        run_framework_script("import sys; print('not json'); sys.exit(4)", 30)
    with pytest.raises(FrameworkProbeError, match="unreadable"):
        run_framework_script("print('__GPUSCOUT_JSON__{oops')", 30)


def test_answer_then_crash_on_exit_is_kept() -> None:
    script = (
        "import os; print('noise'); print('__GPUSCOUT_JSON__{\"version\": \"1\"}'); os._exit(11)"
    )
    raw = run_framework_script(script, 30)
    assert raw["version"] == "1" and raw["extra"]["exit_code"] == 11


def test_environment_reaches_the_child() -> None:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="3")
    script = "import os, json; print('__GPUSCOUT_JSON__' + json.dumps(dict(os.environ)))"
    assert run_framework_script(script, 30, env=env)["CUDA_VISIBLE_DEVICES"] == "3"


def test_scripts_report_missing_modules(tmp_path: Path) -> None:
    # An empty directory first on the path does not help the import; a bogus name does.
    for script, module in ((TORCH_SCRIPT, "torch"), (TENSORFLOW_SCRIPT, "tensorflow")):
        blocker = tmp_path / module
        blocker.mkdir()
        (blocker / "__init__.py").write_text("raise ModuleNotFoundError('No module named x')\n")
        env = dict(os.environ, PYTHONPATH=str(tmp_path))
        raw = run_framework_script(script, 60, env=env)
        assert raw["installed"] is False and "ModuleNotFoundError" in raw["error"]


TF_STUB = """
__version__ = "2.18.0"
class _Dev:
    def __init__(self, name): self.name = name
class sysconfig:
    @staticmethod
    def get_build_info():
        return {"cuda_version": "12.5.1", "cudnn_version": "9", "is_cuda_build": True,
                "is_rocm_build": False}
class config:
    @staticmethod
    def list_physical_devices(kind):
        return [_Dev("/physical_device:GPU:0")] if kind == "GPU" else []
    class experimental:
        @staticmethod
        def get_device_details(dev):
            return {"device_name": "NVIDIA A100-SXM4-80GB", "compute_capability": (8, 0)}
class device:
    def __init__(self, name): pass
    def __enter__(self): return self
    def __exit__(self, *a): return False
class _T:
    def __init__(self, v): self.v = v
    def __add__(self, o): return _T([x + o for x in self.v])
def ones(shape): return _T([1.0] * shape[0])
def reduce_sum(t): return sum(t.v)
"""

JAX_STUB = """
__version__ = "0.5.0"
class _D:
    platform = "gpu"
    device_kind = "NVIDIA H100 80GB HBM3"
    compute_capability = "9.0"
def devices(): return [_D()]
def default_backend(): return "gpu"
def device_put(x, d): return x
"""

JNP_STUB = """
class _A:
    def __init__(self, v): self.v = v
    def __add__(self, o): return _A([x + o for x in self.v])
    def sum(self): return sum(self.v)
def ones(n): return _A([1.0] * n)
"""


def test_tensorflow_and_jax_scripts_against_stub_modules(tmp_path: Path) -> None:
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(textwrap.dedent(TF_STUB))
    (tmp_path / "jax").mkdir()
    (tmp_path / "jax" / "__init__.py").write_text(textwrap.dedent(JAX_STUB))
    (tmp_path / "jax" / "numpy.py").write_text(textwrap.dedent(JNP_STUB))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    tf = framework_info_from_raw("tensorflow", run_framework_script(TENSORFLOW_SCRIPT, 60, env=env))
    assert tf.version == "2.18.0" and tf.cuda_build == "12.5.1" and tf.cudnn_version == "9"
    assert tf.gpu_available and tf.device_count == 1
    assert tf.device_names == ("NVIDIA A100-SXM4-80GB",) and tf.device_capabilities == ((8, 0),)
    assert tf.kernel_ok is True and tf.extra["is_cuda_build"] is True
    jax = framework_info_from_raw("jax", run_framework_script(JAX_SCRIPT, 60, env=env))
    assert jax.version == "0.5.0" and jax.gpu_available and jax.device_count == 1
    assert jax.device_names == ("NVIDIA H100 80GB HBM3",)
    assert jax.device_capabilities == ((9, 0),) and jax.kernel_ok is True
    assert jax.extra["default_backend"] == "gpu"


@pytest.mark.parametrize(
    ("raw", "text"),
    [(8902, "8.9.2"), (90100, "9.1.0"), (91300, "9.13.0"), ("9", "9"), (None, None)],
)
def test_cudnn_version_formatting(raw: object, text: str | None) -> None:
    assert format_cudnn_version(raw) == text
