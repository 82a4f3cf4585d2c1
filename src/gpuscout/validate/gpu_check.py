"""Every GPU check and benchmark as one list of capped steps, for one call of a GPU machine.

    python -m gpuscout.validate.gpu_check --out DIR [--device cuda:0|cpu] [--plan]
        [--extended] [--deadline-s 540] [--cap STEP=SECONDS ...] [--only STEP,...]
        [--tiny] [--keep-work]

(``scripts/gpu_check.sh`` installs gpuscout and runs this with ``--out "$OUT"``.)

The steps run one after another, most valuable first, each in its own process group
under its own time cap (``MAIN`` below: the caps and the packing add up to at most the
540 s deadline, so one 10-minute call of a time-limited machine holds them all). A step
past its cap is killed, group and all, and recorded "cut off"; a failing step is
recorded "failed" with its exit code; either way the next step runs. A global deadline
(``--deadline-s``) bounds the whole call: a step with no time left is "skipped: no time
left". ``--extended`` runs the longer work instead (``EXTENDED``: the full micro sweep,
the compile-heavy tests and goals, ``fit_validate``'s whole table, ``bench dist``), as a
second call when the loan has time left; its caps add up to more than one call, so the
deadline skips what does not fit (``--only`` picks steps for a further call).

Results are written as they happen: ``OUT/steps.json`` (each step's status, exit code,
wall time, cap, command and files) and each step's output under ``OUT/work/``. At the
end, and on SIGTERM or SIGINT, ``OUT/summary.md`` (the docs/benchmarks.md section, see
``gpuscout.validate.summary``) and ``OUT/gpu_check.tar.gz`` (everything, with the results
store) are written; ``OUT/work/`` is then removed (``--keep-work`` keeps it), so the
folder holds the three files a device tool brings back.

``--device cpu --tiny`` is the CPU rehearsal of the same steps at tiny sizes (CI runs
it): the GPU-only steps still run and are recorded as failed or skipped, with why.
Importing this module imports no framework: torch runs only inside the steps.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

# The checkout: the steps that run scripts/ or tests/ run from here.
ROOT = Path(__file__).resolve().parents[3]
DEADLINE_S = 540  # one call of at most 10 minutes, less a margin for the install and start
PACK_S = 10  # kept back from the deadline for steps.json, summary.md and the archive

# Placeholders in a step's argv, filled in by ``Step.argv_for``.
PY, DEV, TENSORS, OUT = "{python}", "{device}", "{tensors}", "{out}"
GS = (PY, "-m", "gpuscout")
WIDE = (("COLUMNS", "120"),)
PYTEST = (PY, "-m", "pytest", "-v", "-rfE", "-p", "no:cacheprovider")
# GPU tests that compile (torch.compile) or repeat a workload step: the extended list's.
SLOW_GPU_TESTS = (
    "tests/gpu/test_workloads_gpu.py::test_cnn_bf16_channels_last_matches_fp32_reference[True]",
    "tests/gpu/test_workloads_gpu.py::test_llm_tuned_decoding_generates_the_reference_tokens[True]",
    "tests/gpu/test_workloads_gpu.py::test_llm_compiled_decode_runs_in_cuda_graphs_without_skips",
    "tests/gpu/test_workloads_gpu.py::test_quick_suite_on_the_gpu_with_energy",
)


@dataclass(frozen=True)
class Step:
    """One command of the check: what it establishes, its cap, where its output goes.

    ``argv`` holds the placeholders above; ``stdout`` is the file its standard output
    goes to (its standard error goes to NAME.stderr), ``files`` the other files it
    writes, ``result`` the one file its figures are read from (``stdout`` unless said).
    ``tiny`` is appended for the CPU rehearsal. A ``gpu_only`` step measures nothing
    off a GPU: run on a CPU it is recorded failed or skipped, never ok. ``ok_codes``:
    the exit codes that mean it ran (the doctor exits 1 when it finds a failed check).
    """

    name: str
    cap_s: int
    establishes: str
    argv: tuple[str, ...]
    stdout: str
    files: tuple[str, ...] = ()
    result: str = ""
    tiny: tuple[str, ...] = ()
    gpu_only: bool = False
    ok_codes: tuple[int, ...] = (0,)
    env: tuple[tuple[str, str], ...] = ()

    @property
    def stderr(self) -> str:
        return f"{self.name}.stderr"

    @property
    def result_file(self) -> str:
        return self.result or self.stdout

    @property
    def outputs(self) -> tuple[str, ...]:
        return (self.stdout, *self.files, self.stderr)

    def argv_for(self, device: str, tiny: bool, out: str, python: str) -> list[str]:
        """The command as it runs: placeholders filled, --tiny's arguments added."""
        fill = {
            PY: python,
            DEV: device,
            TENSORS: "cuda" if device.startswith("cuda") else "cpu",
        }
        args = [*self.argv, *(self.tiny if tiny else ())]
        return [fill.get(a, a.replace(OUT, out)) for a in args]

    def display(self, device: str, tiny: bool) -> str:
        """The command as a person types it, with ``$OUT`` for the output folder."""
        argv = self.argv_for(device, tiny, "$OUT", "python")
        quoted = " ".join(f'"{a}"' if "$OUT" in a else shlex.quote(a) for a in argv)
        env = " ".join(f"{k}={v}" for k, v in self.env)
        return f'{env + " " if env else ""}{quoted} > "$OUT/{self.stdout}"'


def _workload(name: str, cap_s: int, what: str, tiny: tuple[str, ...]) -> Step:
    """`bench workload NAME`, both implementations; the rehearsal runs the tuned one only
    and stores nothing (each run is a process of its own, and storing one probes the
    frameworks for the fingerprint: on two CPU cores that, not the size, costs; the
    rehearsal's `gpuscout run` step stores)."""
    argv = (*GS, "bench", "workload", name, "--device", DEV, "--impl", "both", "--quick")
    result = f"workload_{name}.json"
    tiny = ("--impl", "tuned", "--no-store", *tiny)
    return Step(f"workload_{name}", cap_s, what, (*argv, "--json"), result, tiny=tiny)


# The first call's steps, most valuable first; each cap is written next to its step.
# fmt: off
MAIN: tuple[Step, ...] = (
    Step(
        "versions", 15,
        "python, torch and its CUDA build, the GPU and its driver (NVML, not nvidia-smi)",
        (PY, "-m", "gpuscout.validate.versions"), "versions.json",
    ),
    Step(
        "doctor", 20, "`gpuscout doctor` as a person reads it: the machine and every finding",
        (*GS, "doctor"), "doctor.txt", ok_codes=(0, 1), env=WIDE,
    ),
    Step(
        "doctor_json", 20, "the doctor's findings and the GPU's identity as JSON",
        (*GS, "doctor", "--json"), "doctor.json", ok_codes=(0, 1),
    ),
    Step(
        "bench_micro_quick", 75,
        "matmul per precision, memory, PCIe and launch ceilings (goal: under 60 s)",
        (*GS, "bench", "micro", "--quick", "--device", DEV, "--json"), "bench_quick.json",
        tiny=("--only", "launch"),
    ),
    Step(
        "plain_reference", 45,
        "the same operations in plain PyTorch, no harness (goal: gpuscout within 3%)",
        (PY, "scripts/plain_torch_reference.py"), "plain_reference.json", gpu_only=True,
    ),
    _workload(
        "mlp", 45, "the Fashion-MNIST MLP, tutorial loop and tuned (CUDA graphs)",
        ("--epochs", "1", "--limit-samples", "256"),
    ),
    _workload(
        "cnn", 30, "a small CNN training, reference and tuned (bf16, channels_last)",
        ("--model", "resnet-tiny", "--batch-size", "2", "--steps", "1"),
    ),
    _workload(
        "encoder", 30, "a BERT-shaped encoder training, reference and tuned (SDPA, bf16)",
        ("--batch-size", "2", "--steps", "1", "--seq-len", "16"),
    ),
    _workload(
        "llm", 45, "a Llama-shaped decoder: decode and prefill, reference and tuned",
        ("--batch-size", "1", "--seq-len", "8"),
    ),
    Step(
        "fit_measure", 40,
        "fit's predicted peak memory against the measured one (llama-125m training), and "
        "the CUDA context's size (goal: within 10%)",
        (*GS, "fit", "llama-125m", "--measure", "--device", DEV, "--timeout", "35", "--json"),
        "fit_measure.json", gpu_only=True,
    ),
    Step(
        "pytest_gpu", 60, "the GPU tests (tests/gpu) but the compile-heavy and slow ones",
        (*PYTEST, "tests/gpu", *(f"--deselect={t}" for t in SLOW_GPU_TESTS)),
        "pytest_gpu.txt", gpu_only=True,
    ),
    Step(
        "gpuscout_run", 105, "`gpuscout run` end to end, with its report (goal: 2 minutes)",
        (*GS, "run", "--report", f"{OUT}/report.html"), "run.txt", files=("report.html",),
        tiny=("--skip-bench",), env=WIDE,
    ),
)
# fmt: on

# The second, optional call's steps: longer work, most valuable first. Their caps add up
# to more than one call; the deadline skips the rest (--only picks them for another).
# fmt: off
EXTENDED: tuple[Step, ...] = (
    MAIN[0],
    Step(
        "profile_mlp", 60,
        "`gpuscout profile` on the tutorial MLP script: its verdict, its GPU sampled with "
        "NVML (utilization, clocks, power), peak CUDA memory",
        (*GS, "profile", "--json", "--steps", "40", "--device", DEV,
         "examples/fashion_mnist_mlp.py", "--epochs", "1", "--samples", "6400"),
        "profile_mlp.json",
    ),
    Step(
        "pytest_gpu_slow", 180, "the compile-heavy and slow GPU tests pytest_gpu leaves out",
        (*PYTEST, *SLOW_GPU_TESTS), "pytest_gpu_slow.txt", gpu_only=True,
    ),
    Step(
        "bench_micro_full", 300,
        "the full micro-benchmark sweep (the H100 reference sizes, 8192; goal: under 5 minutes)",
        (*GS, "bench", "micro", "--device", DEV, "--json"), "bench_full.json",
        tiny=("--only", "launch"),
    ),
    Step(
        "workload_goals", 300,
        "the workload goals: the MLP in 1 s, compiled ResNet-50, llama-1.1b decode vs its bound",
        (PY, "scripts/workload_goals.py", "--device", DEV, "--out", f"{OUT}/workload_goals.json"),
        "workload_goals.out", files=("workload_goals.json",), result="workload_goals.json",
        tiny=("--only", "quick"),
    ),
    Step(
        "fit_validate", 240,
        "fit against measured memory for every workload and Llama 1B/8B, accelerate beside",
        (PY, "scripts/fit_validate.py", "--device", DEV, "--out", f"{OUT}/fit_validate.json"),
        "fit_validate.md", files=("fit_validate.json",), result="fit_validate.json",
        tiny=("--simulate", "--only", "mlp"),
    ),
    Step(
        "dist_nccl_1rank_quick", 60, "bench dist: NCCL collectives and scaling, one rank",
        (*GS, "bench", "dist", "--nproc-per-node", "1", "--backend", "nccl", "--quick",
         "--workload", "cnn,encoder,llm", "--json"),
        "dist_nccl_1rank_quick.json", gpu_only=True,
    ),
    Step(
        "dist_gloo_cuda_2ranks_quick", 60, "bench dist: two ranks sharing the GPU (gloo)",
        (*GS, "bench", "dist", "--nproc-per-node", "2", "--backend", "gloo", "--device",
         TENSORS, "--quick", "--workload", "cnn", "--json"),
        "dist_gloo_cuda_2ranks_quick.json", tiny=("--max-size", "1M"),
    ),
    Step(
        "dist_nccl_1rank_full", 120, "bench dist: NCCL collectives from 1 KiB to 1 GiB",
        (*GS, "bench", "dist", "--nproc-per-node", "1", "--backend", "nccl", "--workload",
         "cnn,encoder,llm"),
        "dist_nccl_1rank_full.txt", gpu_only=True, env=WIDE,
    ),
    Step(
        "workloads_tuned", 240,
        "every workload tuned at full size, stored: what predict calibrates on",
        (*GS, "bench", "workload", "all", "--device", DEV, "--impl", "tuned"),
        "workloads_tuned.txt", env=WIDE,
        tiny=("--quick", "--epochs", "1", "--limit-samples", "256", "--steps", "1",
              "--batch-size", "2", "--seq-len", "8"),
    ),
    Step(
        "profile_overhead", 60,
        "the profiler's own cost on a step: the CNN and MLP examples with and without its "
        "hooks (goal: under 3% on the CNN)",
        (PY, "-m", "gpuscout.validate.profile_overhead", "--device", TENSORS, "--out",
         f"{OUT}/profile_overhead.json"),
        "profile_overhead.txt", files=("profile_overhead.json",), result="profile_overhead.json",
        tiny=("--only", "mlp", "--blocks", "1"),
    ),
    Step(
        "advise", 20, "`gpuscout advise` on this machine's stored results",
        (*GS, "advise"), "advise.txt", env=WIDE,
    ),
)
# fmt: on


def steps_for(extended: bool, caps: dict[str, int], only: Sequence[str] = ()) -> list[Step]:
    """The step list to run: ``--extended``'s or the main one, ``--only`` some of them,
    each ``--cap STEP=SECONDS`` applied. Unknown names are a usage error (ValueError)."""
    steps = list(EXTENDED if extended else MAIN)
    names = [s.name for s in steps]
    unknown = [n for n in [*caps, *only] if n not in names]
    if unknown:
        raise ValueError(f"unknown step {', '.join(unknown)}; the steps: {', '.join(names)}")
    picked = [s for s in steps if not only or s.name in only]
    return [replace(s, cap_s=caps.get(s.name, s.cap_s)) for s in picked]


def plan_text(steps: Sequence[Step], device: str, tiny: bool, deadline_s: int) -> str:
    """What ``--plan`` prints: each step, what it establishes, its cap, and the total."""
    width = max(len(s.name) for s in steps)
    lines = [f"gpu_check: {len(steps)} steps on {device}{' (tiny)' * tiny}, in this order", ""]
    for i, s in enumerate(steps, 1):
        gpu = " [GPU only]" if s.gpu_only else ""
        lines.append(f"{i:>2}. {s.name:<{width}} {s.cap_s:>4} s  {s.establishes}{gpu}")
        lines.append(f"    {'':<{width}}         $ {s.display(device, tiny)}")
    total = sum(s.cap_s for s in steps) + PACK_S
    lines += [
        f"    {'packing':<{width}} {PACK_S:>4} s  steps.json, summary.md, gpu_check.tar.gz",
        "",
        f"total {total} s of caps (packing included) against the {deadline_s} s deadline"
        + ("" if total <= deadline_s else ": the deadline skips the steps that do not fit"),
    ]
    return "\n".join(lines) + "\n"


def _cap(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"--cap takes STEP=SECONDS (whole seconds), not {text!r}")
    return name, int(value)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m gpuscout.validate.gpu_check",
        description=(__doc__ or "").split("\n\n")[0].strip(),
    )
    ap.add_argument("--out", type=Path, help="the output folder (required unless --plan)")
    ap.add_argument("--device", default="cuda:0", help="cuda:N, or cpu for the rehearsal")
    ap.add_argument("--plan", action="store_true", help="print the steps and caps, and exit")
    ap.add_argument("--extended", action="store_true", help="the longer, optional steps")
    ap.add_argument("--deadline-s", type=int, default=DEADLINE_S, help="the whole call's bound")
    ap.add_argument("--cap", type=_cap, action="append", default=[], metavar="STEP=SECONDS")
    ap.add_argument("--only", default="", help="comma-separated steps to run (default: all)")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes: the CPU rehearsal")
    ap.add_argument("--keep-work", action="store_true", help="keep OUT/work after packing")
    return ap.parse_args(argv)


def invocation(args: argparse.Namespace) -> str:
    """The command line as recorded in steps.json, ``$OUT`` for the output folder."""
    words = ["python", "-m", "gpuscout.validate.gpu_check", "--out", "$OUT"]
    words += ["--device", args.device, "--deadline-s", str(args.deadline_s)]
    words += [w for flag in ("extended", "tiny") if getattr(args, flag) for w in [f"--{flag}"]]
    words += [f"--cap={name}={value}" for name, value in args.cap]
    words += [f"--only={args.only}"] if args.only else []
    return " ".join(words)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    try:
        steps = steps_for(args.extended, dict(args.cap), only)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.plan:
        sys.stdout.write(plan_text(steps, args.device, args.tiny, args.deadline_s))
        return 0
    if args.out is None:
        print("error: --out DIR is required (or --plan)", file=sys.stderr)
        return 2
    from gpuscout.validate.stepper import Check, Settings

    settings = Settings(
        out=args.out,
        device=args.device,
        tiny=args.tiny,
        extended=args.extended,
        deadline_s=args.deadline_s,
        keep_work=args.keep_work,
        invocation=invocation(args),
    )
    return Check(settings, steps).run()


if __name__ == "__main__":
    sys.exit(main())
