"""What one rank of a multi-process job knows and shares: ``RankContext``.

A benchmark that runs inside a torchrun job gets a ``RankContext``: its rank, the world
size, its device, and the few collective helpers every such benchmark needs (the maximum
of a float over ranks, gathering small JSON-able records). It also reports progress: each
call to ``progress(phase)`` rewrites ``rank-R.progress.json`` in the job's directory. The
launcher reads those files to show progress and, when the job hangs, to name the rank that
stopped moving: the one whose progress is behind the others (they wait for it inside a
collective, one phase further on).

Files are JSON written atomically (write, then rename), never pickles: a rank on another
machine or a different Python must never be able to run code in the launcher.

``fault`` is a testing hook: "ACTION:RANK[@STEP]" makes that rank fail when it reaches
progress step STEP (default: the first phase after the process group is up). ACTION is
exit (``os._exit(3)``), kill (SIGKILL itself), hang (sleep forever) or raise; corrupt
makes that rank's benchmarks spoil their own output before checking it (``corrupts()``),
to prove that a wrong result is caught and reported rather than timed; oom makes that
rank's scaling points ask the allocator for 1 PiB (``exhaust_memory()``), a real
out-of-memory error, to prove that a point that does not fit is recorded as such.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpuscout._types import Measurement, to_jsonable
from gpuscout.errors import UsageError

FAULT_ACTIONS = ("exit", "kill", "hang", "raise", "corrupt", "oom")
# Faults that change what a benchmark sees rather than stopping the rank at a step.
DATA_FAULTS = ("corrupt", "oom")
FIRST_WORK_STEP = 2  # 0 "starting", 1 "process group ready", 2 the first real phase


@dataclass(frozen=True)
class Fault:
    action: str
    rank: int
    step: int = FIRST_WORK_STEP


def parse_fault(spec: str | None) -> Fault | None:
    """ "exit:1" / "hang:1@4" -> Fault; None for None or ""."""
    if not spec:
        return None
    try:
        action, rest = spec.split(":", 1)
        rank_s, _, step_s = rest.partition("@")
        fault = Fault(action.strip(), int(rank_s), int(step_s) if step_s else FIRST_WORK_STEP)
    except ValueError:
        raise UsageError(
            f"bad fault spec {spec!r}", "use ACTION:RANK[@STEP], e.g. exit:1"
        ) from None
    if fault.action not in FAULT_ACTIONS:
        raise UsageError(
            f"unknown fault action {fault.action!r}", f"use {', '.join(FAULT_ACTIONS)}"
        )
    return fault


def write_json(path: Path, obj: Any) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(to_jsonable(obj), allow_nan=False))
    os.replace(tmp, path)


def progress_path(out_dir: Path, rank: int) -> Path:
    return out_dir / f"rank-{rank}.progress.json"


def result_path(out_dir: Path, rank: int) -> Path:
    return out_dir / f"rank-{rank}.json"


def error_path(out_dir: Path, rank: int) -> Path:
    return out_dir / f"rank-{rank}.error.json"


@dataclass
class RankContext:
    """One rank's view of the job. ``device`` is "cpu" or "cuda:N"."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    out_dir: Path
    backend: str = "gloo"
    device: str = "cpu"
    fault: Fault | None = None
    hostname: str = ""
    step: int = -1
    phase: str = ""
    total: int | None = None

    # -- progress ---------------------------------------------------------------

    def progress(self, phase: str, total: int | None = None) -> None:
        """Mark the start of a phase (one collective size, one scaling point ...).

        ``total`` (optional, once known) is the number of phases the whole job will
        mark, for a progress bar."""
        self.step += 1
        self.phase = phase
        if total is not None:
            self.total = total
        self._maybe_fail()
        write_json(
            progress_path(self.out_dir, self.rank),
            {
                "rank": self.rank,
                "pid": os.getpid(),
                "host": self.hostname,
                "step": self.step,
                "phase": phase,
                "total": self.total,
                "time": time.time(),
            },
        )

    def corrupts(self) -> bool:
        """True on the rank a "corrupt" fault names (the testing hook above)."""
        f = self.fault
        return f is not None and f.action == "corrupt" and f.rank == self.rank

    def exhaust_memory(self) -> None:
        """On the rank an "oom" fault names, ask the allocator of this rank's device for
        1 PiB: the allocator's own out-of-memory error (the testing hook above)."""
        f = self.fault
        if f is not None and f.action == "oom" and f.rank == self.rank:
            import torch

            torch.empty(1 << 50, dtype=torch.uint8, device=self.torch_device())

    def _maybe_fail(self) -> None:
        f = self.fault
        if f is None or f.action in DATA_FAULTS or f.rank != self.rank or f.step != self.step:
            return
        if f.action == "exit":
            os._exit(3)
        if f.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if f.action == "hang":
            while True:
                time.sleep(3600)
        raise RuntimeError(f"injected failure on rank {self.rank} at {self.phase!r}")

    # -- torch side (imported lazily: this module is imported by the launcher too) ---

    def torch_device(self) -> Any:
        import torch

        return torch.device(self.device)

    def measure(self, fn: Callable[[], object], *, iters: int, warmup: int) -> Measurement:
        """``timing.measure`` with exactly ``iters`` timed calls, on this rank's clock
        (CUDA events on a GPU). A fixed count, never a time target: a count decided by
        each rank's own clock would differ between ranks, and one rank would be left
        waiting in a collective the others never start."""
        from gpuscout.timing import clock_for, measure

        return measure(
            fn,
            clock=clock_for(self.device),
            warmup=warmup,
            min_iters=iters,
            max_iters=iters,
            min_time_s=0.0,
            max_time_s=1e9,
        )

    def all_reduce_max(self, value: float, group: Any = None) -> float:
        """The largest ``value`` over the ranks of ``group`` (all ranks when None)."""
        import torch
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
        return float(t.item())

    def all_true(self, flag: bool, group: Any = None) -> bool:
        """True when ``flag`` is true on every rank: all ranks take the same branch."""
        import torch
        import torch.distributed as dist

        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN, group=group)
        return bool(t.item())

    def gather_json(self, obj: Any, group: Any = None) -> list[Any]:
        """Every rank's ``obj`` (JSON-able), in rank order, on every rank of ``group``.

        Encoded as JSON bytes in a uint8 tensor (padded to the longest), so it works on
        every backend and never unpickles what another process sent."""
        import torch
        import torch.distributed as dist

        data = json.dumps(to_jsonable(obj), allow_nan=False).encode()
        n = dist.get_world_size(group)
        size = torch.tensor([len(data)], dtype=torch.int64, device=self.device)
        sizes = [torch.zeros_like(size) for _ in range(n)]
        dist.all_gather(sizes, size, group=group)
        longest = max(int(s.item()) for s in sizes)
        buf = torch.zeros(longest, dtype=torch.uint8, device=self.device)
        if data:
            buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        bufs = [torch.zeros_like(buf) for _ in range(n)]
        dist.all_gather(bufs, buf, group=group)
        return [
            json.loads(bytes(b[: int(s.item())].cpu().tolist()).decode())
            for b, s in zip(bufs, sizes, strict=True)
        ]

    def barrier(self) -> None:
        import torch.distributed as dist

        if self.device.startswith("cuda") and self.backend == "nccl":
            # NCCL's barrier guesses the device from the rank; name it explicitly.
            dist.barrier(device_ids=[self.torch_device().index])
        else:
            dist.barrier()
