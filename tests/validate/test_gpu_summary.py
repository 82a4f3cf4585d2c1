"""gpuscout.validate.summary turns a GPU check's output folder into docs/benchmarks.md's
section: the tables come out, what is missing or cut off is listed as not measured, and
no figure appears that is not in the folder. tests/fixtures/gpu_out/ holds real outputs
from the CPU machine and the recorded H100 (its README says which file is which); the
tests add GPU-shaped records built from those real ones where a GPU run is needed."""

from __future__ import annotations

import copy
import json
import re
import shutil
import tarfile
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gpuscout._types import Result, to_jsonable
from gpuscout.report import fmt
from gpuscout.validate import gpu_check, summary_io, workload_goals
from gpuscout.validate import summary as summary_module
from helpers import FIXTURES

FIXTURE = FIXTURES / "gpu_out"
GPU = "cuda:0"
CHECK_SOURCE = Path(gpu_check.__file__).read_text()  # the steps' commands and caps


@pytest.fixture(scope="module")
def gs() -> ModuleType:
    return summary_module


@pytest.fixture(scope="module")
def io() -> ModuleType:
    return summary_io


def read(path: Path) -> Any:
    return json.loads(path.read_text())


def write(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(to_jsonable(doc), indent=2))


def as_gpu(r: dict[str, Any], name: str, size: int | None = None) -> dict[str, Any]:
    """A real CPU record relabelled as a GPU one (device, name, size): its figure stays."""
    out = copy.deepcopy(r) | {"device": GPU, "name": name}
    if size is not None:
        out["extra"]["size"] = size
    return out


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The fixture folder plus a GPU-shaped bench_full.json and GPU goals for cnn and llm."""
    out = tmp_path / "out"
    shutil.copytree(FIXTURE, out)
    quick = {r["name"]: r for r in read(out / "bench_quick.json")["results"]}
    full = [
        as_gpu(quick["matmul/bf16/1024"], "matmul/bf16/8192", 8192),
        as_gpu(quick["matmul/fp32/1024"], "matmul/fp32/8192", 8192),
        as_gpu(quick["matmul/fp32/256"], "matmul/tf32/1024", 1024),  # no 8192: not comparable
        {"name": "matmul/fp8", "device": GPU, "figure": None, "unit": "TFLOPS"}
        | {"status": "skipped", "error": "fp8 needs compute capability 8.9", "extra": {}},
        as_gpu(quick["memory/copy"], "memory/copy"),
    ]
    write(out / "bench_full.json", {"run_id": None, "quick": False, "results": full})
    # workload_goals' own judges write the goals' real keys
    cnn = {"model": "resnet50", "dtype": "bf16", "batch_size": 256, "channels_last": True}
    llm = {"model": "llama-1.1b", "dtype": "bf16", "weight_bytes": 2.2e9}
    llm |= {"ceiling_kind": "memory bandwidth", "ceiling_value": 3350.0}
    goals = read(out / "workload_goals.json")
    cnn |= {"compile": True}
    llm |= {"ceiling_source": "catalog datasheet (h100-sxm5-80gb)"}
    goals["cnn"] = workload_goals.judge_cnn(
        [Result("cnn/tuned", GPU, 5712.0, "images/s", extra=cnn)], GPU
    )
    goals["llm"] = workload_goals.judge_llm(
        [Result("llm/tuned/decode-b1", GPU, 911.0, "tok/s", extra=llm)]
    )
    write(out / "workload_goals.json", goals)
    return out


def row(md: str, first: str) -> list[str]:
    """The cells of the Markdown table row whose first cell is ``first``."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("|") and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r}")


def section(md: str, title: str) -> str:
    start = md.index(title)
    end = md.find("\n### ", start + 1)
    return md[start : end if end > 0 else None]


def test_the_tables_come_out(gs: ModuleType, folder: Path) -> None:
    quick_doc = read(folder / "bench_quick.json")
    quick = {r["name"]: r for r in quick_doc["results"]}
    quick_doc["results"].append(as_gpu(quick["memory/triad"], "memory/triad"))
    write(folder / "bench_quick.json", quick_doc)
    md = gs.summarize(folder)
    full = {r["name"]: r for r in read(folder / "bench_full.json")["results"]}
    plain = read(folder / "plain_reference.json")
    bf16 = full["matmul/bf16/8192"]["figure"]
    cells = row(md, "matmul bf16 8192^3 (TFLOPS)")
    ratio = bf16 / plain["matmul_bf16_8192_tflops"]
    assert cells[1:6] == [fmt.num(bf16), "not measured", "0.27", "763", f"{ratio:.3f}"]
    assert cells[6] == ("yes" if abs(ratio - 1) <= 0.03 else "no")
    assert cells[7] == ", ".join(full["matmul/bf16/8192"]["extra"]["flags"]) or "none"
    assert row(md, "matmul fp16 8192^3 (TFLOPS)")[3].startswith("error: RuntimeError")
    assert row(md, "matmul tf32 8192^3 (TFLOPS)")[6] == "not comparable (at 1024)"
    assert row(md, "matmul fp8 8192^3 (TFLOPS)")[1].startswith("skipped: fp8 needs")
    assert row(md, "H2D pinned (GB/s)")[1:5] == ["not measured", "not measured", "12.3", "54.0"]
    # without the full run, --quick's figure stands against plain PyTorch, and says so
    triad = quick["memory/triad"]["figure"] / plain["triad_gbs"]
    assert row(md, "device triad (GB/s)")[1] == "not measured"
    assert row(md, "device triad (GB/s)")[5] == f"{triad:.3f} (quick)"
    # the doctor section: the doctor's verdict lines from the recorded H100
    assert row(md, "catalog row")[1] == "h100-sxm5-80gb"
    assert row(md, "compute capability")[1] == "9.0"
    assert row(md, "max CUDA (driver)")[1] == "13.0"
    assert row(md, "PCIe")[1] == "gen5 x16 (max gen5 x16)"
    assert "Exit code 0: no check failed" in md
    # the workloads at quick size, each result with its command
    tuned = next(
        r for r in read(folder / "workload_mlp.json")["results"] if r["name"] == "mlp/tuned"
    )
    assert row(md, "mlp/tuned")[1:3] == ["cpu", f"{fmt.num(tuned['figure'])} samples/s"]
    assert "- workload_mlp.json: `python -m gpuscout bench workload mlp --device cuda:0" in md
    assert "- workload_cnn.json: missing; step `workload_cnn` cut off (its 30 s cap)" in md
    # the workload goals: the verdicts as the judges gave them, and why
    assert row(md, "mlp")[3:] == ["not met", "failed: tuned <= 0.8 x reference"]
    cnn = row(md, "cnn")  # the goals table comes before bench dist's scaling rows
    assert cnn[1] == "5,712 images/s compiled (compile speed-up n/a)" and cnn[3] == "met"
    assert row(md, "llm")[3] == "not judged" and "datasheet" in row(md, "llm")[4]
    # fit: fit --measure's one case with the context, and fit_validate's table
    fit = read(folder / "fit_measure.json")
    predicted, peak = fit["estimate"]["total_bytes"], fit["measured"]["peak_bytes"]
    assert row(md, "predicted peak")[1] == f"{predicted / 2**30:.2f} GiB"
    assert row(md, "measured peak")[1] == f"{peak / 2**30:.2f} GiB"
    assert row(md, "fit error")[1] == f"{(predicted - peak) / peak * 100:+.1f}%"
    context = fit["measured"]["context_bytes"] / 2**30
    assert row(md, "CUDA context, measured")[1].startswith(f"{context:.2f} GiB (nvml")
    assert row(md, "CUDA context, assumed by fit")[1] == "0.49 GiB"
    assert row(md, "cnn workload")[1:5] == ["10.87 GiB", "10.86 GiB", "+0.1%", "yes"]
    assert "6 of the 6 cases with a figure are within 10%" in md
    # bench dist
    assert row(md, "all_reduce")[1:3] == ["4MiB", "0.53"]
    scaling = [ln for ln in md.splitlines() if ln.startswith("| cnn | 2 |")]
    assert scaling == ["| cnn | 2 | 917 images/s | 44% | 34% |"]
    # header: date, device, versions, the exact commands, each step's result
    assert "Date: 2026-11-23T07:30:00Z" in md and "NVIDIA H100 80GB HBM3, 580.95.05" in md
    assert "torch 2.11.0+cu130 (built for CUDA 13.0)" in md and "CUDA up to 13.0" in md
    cut = "cut off (the 540 s deadline (180 s were left)) after 180.0 s"
    assert row(md, "bench_micro_full")[2] == cut
    assert row(md, "bench_micro_quick")[2] == "ok, exit 0, 11.3 s of its 75 s cap"
    assert row(md, "dist_nccl_1rank_full")[2] == "skipped: no time left"
    assert "`python -m gpuscout bench micro --quick --device cuda:0 --json" in md
    assert "`bench_micro_quick`: ok, exit 0, 11.3 s of its 75 s cap; goal 1.0 min: met" in md
    assert "A rehearsal on the CPU" not in md


def test_missing_files_are_listed_as_not_measured(gs: ModuleType, folder: Path) -> None:
    md = gs.summarize(folder)
    missing = section(md, "### Not measured in this run")
    # written by the fixture, but its step was cut off: listed, with what is there
    assert "- `bench_full.json`: written; step `bench_micro_full` cut off" in missing
    nccl = "`dist_nccl_1rank_quick.json`: missing; step `dist_nccl_1rank_quick` failed (exit 1)"
    assert nccl in missing
    assert "`pytest_gpu.txt`: missing; step `pytest_gpu` failed (exit 1) after 63.5 s" in missing
    assert (
        "- `dist_nccl_1rank_full.txt`: missing; step `dist_nccl_1rank_full` skipped: no" in missing
    )
    # a step no call of this folder ran: named, not hidden
    unrun = "gpuscout_run, profile_mlp, pytest_gpu_slow, workloads_tuned, profile_overhead, advise"
    assert f"- not among this run's steps: {unrun}" in missing
    (folder / "bench_full.json").unlink()
    (folder / "bench_micro_full.stderr").write_text("Traceback ...\nKeyboardInterrupt\n")
    md = gs.summarize(folder)
    missing = section(md, "### Not measured in this run")
    full = "`bench_full.json`: missing; step `bench_micro_full` cut off (the 540 s deadline"
    assert f"{full} (180 s were left)) after 180.0 s; stderr: `KeyboardInterrupt`" in missing
    assert row(md, "matmul bf16 8192^3 (TFLOPS)")[1] == "not measured"


def test_a_step_that_ended_ok_but_wrote_nothing_is_not_measured(
    gs: ModuleType, folder: Path
) -> None:
    (folder / "plain_reference.json").write_text("Traceback (most recent call last):\n")
    missing = section(gs.summarize(folder), "### Not measured in this run")
    assert "- `plain_reference.json`: not valid JSON" in missing
    assert "step `plain_reference` ok, exit 0, 41.2 s of its 45 s cap" in missing


def test_an_empty_folder_lists_every_step_and_shows_no_figure(
    gs: ModuleType, tmp_path: Path
) -> None:
    md = gs.summarize(tmp_path)
    missing = section(md, "### Not measured in this run")
    assert "- `steps.json`: missing, so no step has a record" in missing
    for step in gpu_check.MAIN:
        assert f"- `{step.result_file}`: missing; step `{step.name}` has no record" in missing
    assert f"- not among this run's steps: {gpu_check.EXTENDED[1].name}" in missing
    for cells in (row(md, f"matmul {d} 8192^3 (TFLOPS)") for d in ("bf16", "fp8", "fp64")):
        assert cells[1:4] == ["not measured"] * 3 and cells[5:] == ["n/a"] * 3
    # Every number left is one of the summary's own constants or from the steps' source.
    allowed = tokens(CHECK_SOURCE) | constant_tokens(gs)
    assert tokens(md) - allowed <= {str(i) for i in range(11)}


def test_truncated_json_does_not_crash(gs: ModuleType, folder: Path) -> None:
    for name in ("doctor.json", "bench_full.json", "fit_validate.json", "workload_goals.json"):
        text = (folder / name).read_text()
        (folder / name).write_text(text[: len(text) // 2])
    (folder / "dist_gloo_cuda_2ranks_quick.json").write_text("")
    (folder / "steps.json").write_text('{"steps": [{"name": "versions", "sta')
    md = gs.summarize(folder)
    missing = section(md, "### Not measured in this run")
    for name in ("doctor.json", "bench_full.json", "fit_validate.json", "workload_goals.json"):
        assert f"- `{name}`: not valid JSON" in missing
    assert "- `steps.json`: not valid JSON" in missing
    assert "- `dist_gloo_cuda_2ranks_quick.json`: empty; step" in missing
    assert "ok host.cpu" in md  # doctor.txt stands in for the broken doctor.json
    assert "| cnn workload | 10.87 | 10.86 | +0.1% |" in md  # fit_validate.md, row by row
    assert row(md, "matmul bf16 8192^3 (TFLOPS)")[1] == "not measured"


def test_gpu_tests_store_and_printed_outputs(gs: ModuleType, folder: Path) -> None:
    failed = "FAILED tests/gpu/test_graphs.py::test_capture - RuntimeError: capture failed"
    (folder / "pytest_gpu.txt").write_text(f"..F.\n{failed}\n1 failed, 3 passed in 41.0s\n")
    (folder / "home").mkdir()
    (folder / "home" / "gpuscout.db").write_bytes(b"")
    (folder / "run.txt").write_text("\n".join(f"line {i}" for i in range(200)) + "\n")
    md = gs.summarize(folder)
    assert "GPU tests (`tests/gpu`): `1 failed, 3 passed in 41.0s`." in md
    assert f"- `{failed}`" in md
    assert "Results store: `home/gpuscout.db`." in md
    printed = section(md, "### Outputs as printed")
    assert "<summary>run.txt (first 150 of 200 lines)</summary>" in printed
    assert "line 149" in printed and "line 150" not in printed
    assert "`run.txt`" not in section(md, "### Not measured in this run")


def test_fit_says_which_estimate_is_closer(gs: ModuleType, folder: Path) -> None:
    doc = read(folder / "fit_validate.json")
    rows = {r["case"]: r for r in doc["rows"]}
    measured = rows["llm workload b1"]["measured_bytes"]
    rows["llm workload b1"] |= {"accelerate_bytes": 1.5 * measured, "accelerate_error_pct": 50.0}
    rows["llm workload b8"] |= {"accelerate_bytes": 3.0e9, "accelerate_error_pct": 0.1}
    rows["encoder workload s512"] |= {"measured_bytes": None, "predicted_error_pct": None}
    rows["encoder workload s512"]["measurement"] = {"status": "oom", "error": "CUDA out of memory"}
    write(folder / "fit_validate.json", doc)
    md = gs.summarize(folder)
    b1 = row(md, "llm workload b1")
    assert b1[-3:] == ["+50.0%", "not comparable (accelerate is not installed)", "fit"]
    assert row(md, "llm workload b8")[-1] == "accelerate"
    assert row(md, "encoder workload s512")[2:5] == ["oom: CUDA out of memory", "n/a", "n/a"]
    assert "5 of the 5 cases with a figure are within 10% (1 of 6 have none)" in md
    assert "fit is closer than accelerate in 1 of the 2 cases" in md


def test_no_number_appears_that_is_not_in_the_inputs(gs: ModuleType, folder: Path) -> None:
    md = gs.summarize(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.name != "README.md"]
    inputs = " ".join(p.read_text() for p in files)
    known = tokens(inputs) | constant_tokens(gs)
    values = [float(t) for t in known if t.count(".") <= 1]
    full = {r["name"]: r["figure"] for r in read(folder / "bench_full.json")["results"]}
    plain = read(folder / "plain_reference.json")
    values.append(full["matmul/bf16/8192"] / plain["matmul_bf16_8192_tflops"])
    values.append(full["matmul/fp32/8192"] / plain["matmul_fp32_8192_tflops"])
    values.append(full["memory/copy"] / plain["copy_gbs"])
    fit = read(folder / "fit_measure.json")
    predicted, peak = fit["estimate"]["total_bytes"], fit["measured"]["peak_bytes"]
    values.append((predicted - peak) / peak * 100)
    unexplained = [t for t in tokens(md) - known if not explained(t, values)]
    assert not unexplained
    # and the check itself can fail: a figure made up in the output is caught
    assert not explained("31415.9", values)


def test_every_step_has_its_command_and_its_files(io: ModuleType) -> None:
    for step in (*gpu_check.MAIN, *gpu_check.EXTENDED):
        cmd = step.display("cuda:0", tiny=False)
        assert f'"$OUT/{step.stdout}"' in cmd and f'"$OUT/{step.result_file}"' in cmd, step
        assert "{" not in cmd, step  # every placeholder filled
        assert io.KNOWN[step.name] == step
    names = [s.name for s in (*gpu_check.MAIN, *gpu_check.EXTENDED)]
    assert len(set(names)) == len(gpu_check.MAIN) + len(gpu_check.EXTENDED) - 1  # versions


def test_steps_json_records_and_two_calls_read_as_one(
    gs: ModuleType, io: ModuleType, folder: Path, tmp_path: Path
) -> None:
    doc = {"steps": [{"name": "versions"}, "garbage", {"name": "doctor", "status": "ok"}]}
    assert io.step_records(doc) == [{"name": "doctor", "status": "ok"}]
    assert io.step_records({"steps": "nope"}) == [] and io.step_records(None) == []
    rec = {"status": "ok", "exit_code": 0, "wall_s": 0.512, "cap_s": 15}
    assert io.result_text(rec) == "ok, exit 0, 0.5 s of its 15 s cap"
    assert io.result_text({"status": "running"}).startswith("left running (the check was")
    # a second call (--extended) in its own folder: its records join, later ones win
    extended = tmp_path / "extended"
    extended.mkdir()
    retried = {"name": "bench_micro_full", "status": "ok", "exit_code": 0, "wall_s": 250.0}
    retried |= {"cap_s": 300, "command": "python -m gpuscout bench micro", "result": "x.json"}
    meta = {"invocation": "python -m gpuscout.validate.gpu_check --extended"}
    write(extended / "steps.json", meta | {"steps": [retried]})
    md = gs.summarize([folder, extended])
    assert row(md, "bench_micro_full")[2] == "ok, exit 0, 250.0 s of its 300 s cap"
    assert "; then `python -m gpuscout.validate.gpu_check --extended`" in md


def test_main_writes_the_file_reads_an_archive_and_refuses_a_missing_folder(
    gs: ModuleType, folder: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "summary.md"
    assert gs.main([str(folder), "--out", str(dest)]) == 0
    text = dest.read_text()
    assert "Invocation: `python -m gpuscout.validate.gpu_check --out $OUT --device cuda:0" in text
    archive = tmp_path / "gpu_check.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in folder.iterdir():
            tar.add(path, arcname=path.name)
    again = tmp_path / "again.md"
    assert gs.main([str(archive), "--out", str(again)]) == 0
    assert again.read_text() == text
    loose = tmp_path / "call"  # a check's OUT after packing: the archive and two files
    loose.mkdir()
    shutil.copy(archive, loose / archive.name)
    shutil.copy(folder / "steps.json", loose / "steps.json")
    assert gs.main([str(loose), "--out", str(again)]) == 0
    assert again.read_text() == text
    assert gs.main([str(tmp_path / "nope")]) == 2


# -- numbers: every one in the output must come from the inputs --------------------------

NUM = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)*")
# fmt writes fractions as percentages, seconds as minutes or ms, bytes as GiB
SCALES = (1.0, 100.0, 1 / 60, 1e3, 1e6, 2**-30, 2**-20)


def tokens(text: str) -> set[str]:
    return {t.rstrip(",").replace(",", "") for t in NUM.findall(text)}


def constant_tokens(gs: ModuleType) -> set[str]:
    consts: list[float] = [*gs.H100_REFERENCE_TFLOPS.values(), gs.MATMUL_N, gs.FIT_TOLERANCE_PCT]
    consts += [b[3] for b in gs.BANDWIDTH if b[3]] + [*gs.WALL_GOALS_S.values(), gs.RUN_GOAL_S]
    consts += [gs.CUDA_CONTEXT_BYTES]
    texts: Iterable[str] = (f"{fmt.num(c)} {fmt.seconds(c)} {c}" for c in consts)
    return tokens(" ".join(texts))


def explained(token: str, values: list[float]) -> bool:
    """``token`` as printed (say "0.27" or "1,037") is some input value, rounded."""
    if token.count(".") > 1:
        return False
    digits = len(token.split(".")[1]) if "." in token else 0
    v, tol = float(token), 0.5 * 10.0**-digits + 1e-9
    return (v <= 10 and v == int(v)) or any(
        abs(abs(x) * s - v) <= tol for x in values for s in SCALES
    )
