"""``jobs.profile`` and ``gpuscout profile`` on small real scripts: what is stored, what
is not, where the ceilings come from, what the script sees, and the projection's
arithmetic."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from gpuscout._types import Result
from gpuscout.errors import UnknownNameError, UsageError
from gpuscout.jobs.profiling import (
    ProfileOptions,
    _with_waits,
    check_device,
    memory_check,
    profile,
)
from gpuscout.predict.records import Projection
from gpuscout.profile.hooks import Observations, Work
from gpuscout.store import Store
from helpers import REPO

pytest.importorskip("torch")

# 20 SGD steps of an 8 -> 8 linear layer on a batch of 4: forward 2*4*8*8 FLOPs, backward
# the weight gradient only (the input needs none): 2*4*8*8 more.
TINY = textwrap.dedent(
    """
    import os, sys
    import torch
    if len(sys.argv) > 1:
        open(sys.argv[1], "w").write(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
    model = torch.nn.Linear(8, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(4, 8)
    for _ in range(20):
        model(x).sum().backward()
        opt.step()
        opt.zero_grad()
    """
)
TINY_FLOPS = 2 * (2 * 4 * 8 * 8)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.py"
    path.write_text(TINY)
    return path


def seeded(store: Store) -> int:
    """A stored bench run of this host's CPU ceilings (figures made up for the test)."""
    with store.run("bench", {"host": platform.node()}) as run:
        run.add_results(
            [
                Result("matmul/fp32/1024", "cpu", 0.1, "TFLOPS"),
                Result("memory/triad", "cpu", 20.0, "GB/s"),
                Result("launch/dispatch", "cpu", 4.0, "us"),
            ]
        )
    return run.id


def test_a_profile_is_judged_by_the_stored_ceilings_and_stored_as_one_run(tiny: Path) -> None:
    with Store.open(":memory:") as store:
        bench = seeded(store)
        options = ProfileOptions((str(tiny),), gpus=("h100-sxm5-80gb",), stdout_to_stderr=True)
        out = profile(store, options)
        assert out.exit_code == 0 and out.problem is None and out.device == "cpu"
        assert out.ceiling_run == bench and out.ceiling is not None
        assert out.ceiling.tflops == {"fp32": 0.1} and out.ceiling.bandwidth_gbs == 20.0
        assert out.ceiling.launch_s == pytest.approx(4e-6)
        assert out.diagnosis is not None and out.diagnosis.kind == "host-bound"
        assert len(out.observations.window) == 20 - 3  # the default warm-up: 3 steps
        (run,) = [r for r in store.list_runs() if r.kind == "profile"]
        assert run.id == out.run_id and run.status == "ok"
        (stored,) = store.results(run.id)
        assert stored.name == "profile/tiny.py" and stored.unit == "samples/s"
        assert stored.extra["flops_per_step"] == TINY_FLOPS
        assert stored.extra["verdict"] == "host-bound" and "workload" not in stored.extra
        assert stored.figure == pytest.approx(4 / out.diagnosis.split.step_s)
        (p,) = out.projections
        assert p.gpu_id == "h100-sxm5-80gb" and p.speedup is not None and p.step_s > 0


def test_a_failing_script_keeps_its_status_and_nothing_is_stored(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("import torch\nraise SystemExit(3)\n")
    with Store.open(":memory:") as store:
        seeded(store)
        out = profile(store, ProfileOptions((str(script),), stdout_to_stderr=True))
        assert out.exit_code == 3 and out.diagnosis is None and out.run_id is None
        assert out.problem is not None
        assert [r.kind for r in store.list_runs()] == ["bench"]


def test_a_script_without_an_optimizer_step_is_not_judged(tmp_path: Path) -> None:
    script = tmp_path / "infer.py"
    script.write_text("import torch\nprint(torch.nn.Linear(2, 2)(torch.ones(1, 2)).sum())\n")
    with Store.open(":memory:") as store:
        out = profile(store, ProfileOptions((str(script),), stdout_to_stderr=True))
        assert out.exit_code == 0 and out.diagnosis is None
        assert out.problem is not None and "optimizer step" in out.problem
        assert store.list_runs() == []


def test_bad_words_fail_before_the_script_runs(tiny: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with Store.open(":memory:") as store:
        with pytest.raises(UsageError, match="unknown device"):
            profile(store, ProfileOptions((str(tiny), str(marker)), device="gpu0"))
        with pytest.raises(UnknownNameError):
            profile(store, ProfileOptions((str(tiny), str(marker)), gpus=("h1000",)))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("device", "env"),
    [("cpu", {"CUDA_VISIBLE_DEVICES": ""}), ("cuda:1", {"CUDA_VISIBLE_DEVICES": "1"}),
     ("cuda", {}), (None, {})],
)  # fmt: skip
def test_the_device_option_is_what_the_script_may_see(
    device: str | None, env: dict[str, str]
) -> None:
    assert check_device(device) == env


def test_cpu_hides_every_gpu_from_the_script(tiny: Path, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    options = ProfileOptions(
        (str(tiny), str(seen)), device="cpu", gpus=(), store=False, measure_ceilings=False
    )
    out = profile(None, options)
    assert seen.read_text() == ""
    assert out.run_id is None and out.ceiling is not None and out.ceiling.tflops == {}


def test_the_data_wait_stays_on_every_gpu() -> None:
    # Hand count: the predictor's step without waits is 10 ms; 5 ms of data waits come
    # back: 15 ms. Measured 30 ms: 2x. Throughput falls by 10/15.
    p = Projection(
        "w", "r", "h100", "H100", "datacenter", 1, "fp32", 0.010, 0.008, 0.012, 300.0,
        "samples/s", "host", None, "", None, "b", (),
    )  # fmt: skip
    got = _with_waits(p, 0.005, 0.030)
    assert (got.step_s, got.step_low_s, got.step_high_s) == pytest.approx((0.015, 0.013, 0.017))
    assert got.speedup == pytest.approx(2.0) and got.throughput == pytest.approx(200.0)
    assert replace(got, step_s=p.step_s, step_low_s=p.step_low_s, step_high_s=p.step_high_s,
                   throughput=p.throughput, speedup=None) == p  # fmt: skip


def _cli(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GPUSCOUT_HOME": str(home), "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "gpuscout", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_the_command_measures_ceilings_once_and_answers_in_json(tiny: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = _cli(["profile", "--json", "--gpus", "l4", str(tiny)], home)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["diagnosis"]["kind"] in ("host-bound", "compute-bound", "memory-bound")
    assert doc["ceiling_run"] is not None and doc["run_id"] == doc["ceiling_run"] + 1
    assert [p["gpu_id"] for p in doc["projections"]] == ["l4"]
    second = _cli(["profile", "--json", "--gpus", "l4", "--", "python", str(tiny)], home)
    again = json.loads(second.stdout)
    assert again["ceiling_run"] == doc["ceiling_run"]  # stored once, read after
    with Store.open(home / "gpuscout.db") as store:
        assert sorted(r.kind for r in store.list_runs()) == ["bench", "profile", "profile"]


def test_the_scripts_own_options_and_exit_status_pass_through(tmp_path: Path) -> None:
    script = tmp_path / "argv.py"
    script.write_text("import sys\nprint(sys.argv[1:])\nsys.exit(4)\n")
    done = _cli(["profile", "--no-store", str(script), "--steps", "5", "--json"], tmp_path)
    assert done.returncode == 4
    assert "['--steps', '5', '--json']" in done.stdout
    assert "nothing to judge" in done.stdout and "never imported torch" in done.stdout


def test_the_report_shows_the_newest_profile(tiny: Path) -> None:
    from gpuscout.report import build_report, render

    with Store.open(":memory:") as store:
        seeded(store)
        before = build_report(store, forecast=False)
        assert before.profiles == () and "Your script" not in render(before, "html")
        options = ProfileOptions((str(tiny),), gpus=("l4",), stdout_to_stderr=True)
        out = profile(store, options)
        report = build_report(store, forecast=False)
    assert out.diagnosis is not None and isinstance(report.profiles, tuple)
    (row,) = report.profiles
    assert (row.script, row.run_id, row.verdict) == ("tiny.py", out.run_id, out.diagnosis.kind)
    assert [p[0] for p in row.projections] == ["NVIDIA L4"]
    assert f"Your script tiny.py: {out.diagnosis.words}." in report.summary
    page = render(report, "html")
    assert 'href="#profile"' in page and "tiny.py" in page and "waiting for data" in page
    assert "## Your script" in render(report, "md")


LLAMA = {  # a tiny Llama-shaped config.json, as transformers writes it
    "model_type": "llama",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 128,
    "vocab_size": 256,
    "max_position_embeddings": 128,
}


def _observed_llama(optimizer: str, momentum: bool, peak: int | None) -> Observations:
    work = Work(
        flops=1.0, samples=2, input_shape=[2, 16], param_dtype="float32",
        optimizer=optimizer, momentum=momentum,
    )  # fmt: skip
    return Observations(
        work=work,
        model={"class": "LlamaForCausalLM", "params": 0, "config": LLAMA},
        memory={"peak_device_bytes": peak},
    )


def test_a_recognised_model_is_held_against_fits_estimate() -> None:
    from gpuscout.fit import FitRequest, estimate
    from gpuscout.fit.models import parse_hf_config

    # What fit says for the same request, asked of fit directly
    spec = parse_hf_config(LLAMA, "test")
    want = estimate(FitRequest(spec, batch_size=2, seq_len=16, dtype="fp32", optimizer="adamw"))
    allocator = want.total_bytes - want.overhead_bytes  # torch's peak has no CUDA context
    check = memory_check(_observed_llama("AdamW", False, 3 * allocator // 2))
    assert check is not None and check.estimated_bytes == allocator
    assert check.request == "training, batch 2, sequence 16, fp32, adamw"
    assert check.measured_over_estimated == pytest.approx(1.5, rel=1e-6)
    sgd = memory_check(_observed_llama("SGD", True, None))
    assert sgd is not None and sgd.request.endswith("sgd-momentum")
    assert sgd.measured_bytes is None and sgd.measured_over_estimated is None


def test_no_config_or_an_unknown_family_is_no_check() -> None:
    assert memory_check(Observations(work=Work(flops=1.0))) is None
    odd = _observed_llama("AdamW", False, None)
    odd.model = {"class": "Net", "params": 0, "config": {"model_type": "mamba"}}
    assert memory_check(odd) is None


def test_a_script_whose_model_carries_a_config_gets_the_check(tmp_path: Path) -> None:
    script = tmp_path / "hf_like.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import torch

            class Config:
                def to_dict(self):
                    return {LLAMA!r}

            class Tiny(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.config = Config()
                    self.emb = torch.nn.Embedding(256, 64)
                    self.out = torch.nn.Linear(64, 256)
                def forward(self, ids):
                    return self.out(self.emb(ids))

            model = Tiny()
            opt = torch.optim.AdamW(model.parameters())
            ids = torch.randint(0, 256, (2, 16))
            for _ in range(8):
                model(ids).sum().backward()
                opt.step()
                opt.zero_grad()
            """
        )
    )
    options = ProfileOptions((str(script),), gpus=(), store=False, measure_ceilings=False)
    out = profile(None, options)
    assert out.memory is not None and out.memory.model == "Tiny"  # its class: no name given
    assert out.memory.request == "training, batch 2, sequence 16, fp32, adamw"
    assert out.memory.estimated_bytes is not None and out.memory.measured_bytes is None
