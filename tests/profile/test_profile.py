"""`gpuscout profile`'s observer and diagnosis on real scripts (examples/), run as a
user runs them: each in its own Python, its output and exit status its own."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gpuscout._types import Ceiling
from gpuscout.profile.bottleneck import (
    Fix,
    bottleneck,
    kind_of,
    split_step,
    usable_cores,
)
from gpuscout.profile.hooks import Observations, StepTiming, Work
from gpuscout.profile.spawn import child_command, run_profiled
from helpers import REPO

pytest.importorskip("torch")
EXAMPLES = REPO / "examples"
# A CPU of this machine's kind, as `bench micro` measures it (fp32 ~0.14 TFLOPS, triad
# ~30 GB/s, ~3 us per op), for the rules on observations given by hand.
CPU = Ceiling(
    tflops={"fp32": 0.14, "bf16": 0.0013}, bandwidth_gbs=30.0, launch_s=3e-6, source="this test"
)


def fp32_peak_now() -> float:
    """This machine's fp32 TFLOPS, measured now: the best of several 1024^3 matmuls."""
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best = math.inf
    for _ in range(10):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * 1024**3 / best / 1e12


@pytest.fixture(scope="module")
def here() -> Ceiling:
    """This machine's ceilings as measured while the tests run, so a real script is
    judged against the speed the machine has then: a loaded CI box slows both alike."""
    best = fp32_peak_now()
    return Ceiling(
        tflops={"fp32": best}, bandwidth_gbs=30.0, launch_s=3e-6, source="measured by the test"
    )


def test_the_tutorial_mlp_is_host_bound_and_its_flops_are_the_hand_count(
    here: Ceiling,
) -> None:
    run = run_profiled(
        [str(EXAMPLES / "fashion_mnist_mlp.py"), "--epochs", "1", "--samples", "3200"],
        steps=30,
        stdout_to_stderr=True,
    )
    obs = run.observations
    assert run.exit_code == 0 and obs.stopped_by_profiler and len(obs.window) == 30
    # Hand count, batch 32, 784-128-10: forward 2*32*784*128 + 2*32*128*10; backward
    # the second layer's input and weight gradients (2 x 2*32*128*10) and the first
    # layer's weight gradient only (its input, the images, needs none).
    forward = 2 * 32 * 784 * 128 + 2 * 32 * 128 * 10
    backward = 2 * (2 * 32 * 128 * 10) + 2 * 32 * 784 * 128
    assert obs.work is not None and obs.work.flops == forward + backward
    assert obs.work.samples == 32 and obs.work.param_bytes == 4 * (784 * 128 + 128 + 1290)
    assert obs.loader is not None and obs.loader["num_workers"] == 0
    found = bottleneck(obs, here)
    assert found.kind == "host-bound"
    assert found.fixes[0].what == "raise the batch size 4x" and found.fixes[0].speedup > 1.5


def test_a_slow_dataset_is_input_bound_with_workers_as_the_fix(here: Ceiling) -> None:
    run = run_profiled(
        [str(EXAMPLES / "slow_loader.py"), "--steps", "40", "--decode-ms", "3"],
        steps=20,
        stdout_to_stderr=True,
    )
    found = bottleneck(run.observations, here)
    assert found.kind == "input-bound", found.split
    # Two or more cores share the decoding: the first fix is workers, at least ~1.5x.
    assert found.fixes[0].what == f"DataLoader(num_workers={min(8, usable_cores())})"
    assert found.fixes[0].speedup > 1.5


def test_a_cnn_at_a_large_batch_is_compute_bound(here: Ceiling) -> None:
    run = run_profiled(
        [str(EXAMPLES / "small_cnn.py"), "--steps", "16"], steps=10, stdout_to_stderr=True
    )
    # The slower of the machine before and after the run: load that came during it
    # slows the steps, and the peak they are judged against with them.
    peak = min(here.tflops["fp32"], fp32_peak_now())
    measured = Ceiling(tflops={"fp32": peak}, bandwidth_gbs=30.0, launch_s=3e-6, source="now")
    found = bottleneck(run.observations, measured)
    assert found.kind == "compute-bound", found.split
    assert found.split.compute_s > found.split.memory_s


def test_a_script_that_raises_shows_its_own_traceback_and_status(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text(
        "import torch\n\ndef train():\n    raise ValueError('bad shape')\n\ntrain()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 1 and doc["error"] == "ValueError: bad shape"
    assert doc["window"] == [] and doc["work"] is None  # nothing measured to keep
    err = proc.stderr
    assert 'broken.py", line 4, in train' in err and "ValueError: bad shape" in err
    assert "gpuscout" not in err and "runpy" not in err  # the user's frames only


def test_ctrl_c_stops_the_script_and_keeps_what_was_observed(tmp_path: Path) -> None:
    script = tmp_path / "forever.py"
    script.write_text(
        textwrap.dedent(
            """
            import torch
            model = torch.nn.Linear(8, 8)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            x = torch.randn(4, 8)
            step = 0
            while True:
                model(x).sum().backward()
                opt.step()
                opt.zero_grad()
                step += 1
                if step == 50:
                    print("50 steps", flush=True)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,  # its own group: SIGINT to it is a terminal's Ctrl-C
    )
    try:
        assert proc.stderr is not None  # the script's own output comes on stderr here
        lines = iter(proc.stderr.readline, "")
        assert "50 steps" in next(line for line in lines if "steps" in line)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # the rest of stderr: the interrupt
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    doc = json.loads(out)
    assert doc["exit_code"] == 130 and doc["interrupted"] is True
    assert (
        len(doc["window"]) >= 50 - 3 - 1
        and doc["work"]["flops"] == 3 * 2 * 4 * 8 * 8 - 2 * 4 * 8 * 8
    )
    assert "KeyboardInterrupt" in err


def test_the_command_takes_the_users_interpreter_or_ours(tmp_path: Path) -> None:
    script = tmp_path / "t.py"
    script.write_text("")
    out = tmp_path / "o.json"
    mine = child_command(["python3", str(script), "--lr", "1"], out, warmup=3, steps=5)
    assert mine[:3] == ["python3", "-m", "gpuscout.profile.boot"]
    assert mine[-4:] == ["--", str(script), "--lr", "1"] and mine[5] == "5"
    bare = child_command([str(script)], out, warmup=3, steps=None)
    assert bare[0] == sys.executable and bare[5] == "0"
    module = child_command(["python", "-m", "pkg.train"], out, warmup=3, steps=None)
    assert module[-3:] == ["--", "-m", "pkg.train"]
    from gpuscout.errors import UsageError

    with pytest.raises(UsageError, match="no such script"):
        child_command([str(tmp_path / "missing.py")], out, warmup=3, steps=None)
    with pytest.raises(UsageError, match="nothing to profile"):
        child_command([], out, warmup=3, steps=None)


# -- the rules, on observations given by hand ---------------------------------------------


def observed(step_s: float, data_s: float, flops: float, ops: int = 10) -> Observations:
    window = [StepTiming(step_s, data_s, 0.0, 0)] * 5
    work = Work(flops=flops, kernel_ops=ops, param_bytes=4000, state_bytes=0, samples=32)
    return Observations(window=window, work=work, device={"type": "cpu"})


@pytest.mark.parametrize(
    ("step_s", "data_s", "flops", "kind"),
    [
        # flops / peak: 0.14e12 FLOP/s; bytes are tiny, so the floor is the arithmetic
        (0.100, 0.050, 1.4e9, "input-bound"),  # data 50% of the step, floor 10 ms
        (0.100, 0.025, 1.4e9, "host-bound"),  # data below 30%, floor 10/75 ms < 30%
        (0.100, 0.000, 4.2e9, "compute-bound"),  # floor 30 ms of 100: exactly the rule
        (0.100, 0.000, 4.1e9, "host-bound"),  # just below it
        (0.100, 0.035, 4.2e9, "input-bound"),  # data 35% > floor 30%, above 30% of step
        (0.100, 0.035, 7.0e9, "compute-bound"),  # floor 50% > data 35%: data is not first
    ],
)
def test_each_rule_and_boundary(step_s: float, data_s: float, flops: float, kind: str) -> None:
    assert kind_of(split_step(observed(step_s, data_s, flops), CPU)) == kind


def test_memory_bound_when_the_bytes_take_longer_than_the_arithmetic() -> None:
    obs = observed(0.100, 0.0, 1.0e6)
    obs.work = Work(flops=1.0e6, kernel_ops=10, param_bytes=10**9 // 6, state_bytes=0)
    split = split_step(obs, CPU)  # 1e9 bytes / 30 GB/s = 33 ms of the 100
    assert split.memory_s == pytest.approx(1e9 // 6 * 6 / 30e9)
    assert kind_of(split) == "memory-bound"


_RUN = textwrap.dedent(
    """
    import json, sys
    from dataclasses import asdict
    from gpuscout.profile.spawn import run_profiled
    run = run_profiled([sys.argv[1]], stdout_to_stderr=True)
    print(json.dumps(asdict(run.observations) | {"exit_code": run.exit_code}))
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


@pytest.mark.parametrize(
    ("cores", "fix"),
    [
        # step 100 ms: 60 ms waiting for a batch, 40 ms the step itself (no workers).
        # 2 cores: the 100 ms of CPU work spread over 2 = 50 ms a step, 2.0x.
        (2, Fix("DataLoader(num_workers=2)", "60% of each step waits for the next batch", 2.0)),
        # 8 cores: the step itself (40 ms) is the longest part, 2.5x.
        (8, Fix("DataLoader(num_workers=8)", "60% of each step waits for the next batch", 2.5)),
        # 1 core: a worker only moves the same work to another process: no gain, no fix.
        (1, None),
    ],
)
def test_the_workers_fix_counts_the_cores_they_share(cores: int, fix: Fix | None) -> None:
    found = bottleneck(observed(0.100, 0.060, 1.4e6), CPU, cores=cores)
    workers = [f for f in found.fixes if f.what.startswith("DataLoader")]
    if fix is None:
        assert workers == []
    else:
        assert workers[0].what == fix.what and workers[0].why == fix.why
        assert workers[0].speedup == pytest.approx(fix.speedup)


def test_cuda_memory_is_read_from_torch_for_the_scripts_gpu() -> None:
    """On a GPU the peak is torch's max_memory_allocated of the model's device (a stand-in
    torch here: this machine has no GPU); on the CPU there is no device peak."""
    from types import SimpleNamespace

    from gpuscout.profile.hooks import _memory

    asked: list[int] = []

    def peak(index: int) -> int:
        asked.append(index)
        return 7 * 2**30

    fake = SimpleNamespace(cuda=SimpleNamespace(max_memory_allocated=peak))
    on_gpu = _memory(fake, {"type": "cuda", "index": 1})
    assert on_gpu["peak_device_bytes"] == 7 * 2**30 and asked == [1]
    assert on_gpu["peak_host_rss_bytes"] > 0
    assert _memory(fake, {"type": "cpu"})["peak_device_bytes"] is None and asked == [1]
