"""Run one function on N processes with torch.distributed, and always come back.

Three ways to get the ranks, chosen by ``plan_launch``:

- one node: ``python -m torch.distributed.run --standalone --nproc-per-node N`` (the
  module, not the ``torchrun`` script, so nothing depends on PATH); the rendezvous
  store takes a free port itself, so two jobs on one machine never collide;
- several nodes: the same command on every node with ``--nnodes M`` and a c10d
  rendezvous at ``--rdzv-endpoint HOST:PORT``;
- inside a Slurm step (``srun -n N gpuscout ...``): each gpuscout task is one rank; it
  starts its rank directly with Slurm's rank, world size and the first host of the
  node list as MASTER_ADDR. With one task per node and ``--nproc-per-node``, each task
  starts torchrun instead, with the node list's first host as the rendezvous.

Each rank runs ``gpuscout.dist.rank_main`` and leaves JSON files in a job directory
(progress, result, error). The launcher never trusts the job to end by itself: it
polls, and past ``timeout_s`` it stops torchrun's process group and every rank it
knows of (their pids are in their progress files; torchrun starts each worker in a
session of its own, so killing torchrun's group would not reach them). A failed job
comes back as a ``JobOutcome`` with one line naming the rank (``dist.diagnose``), and
its directory is kept for the logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpuscout.errors import UsageError
from gpuscout.dist import diagnose
from gpuscout.dist.slurm import SlurmTask, detect_slurm

Progress = Callable[[str, int, int], None]  # (label, done, total; 0 = not known yet)

ENTRY = "gpuscout.dist.rank_main"
POLL_S = 0.2
_STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class LaunchSpec:
    """How many ranks, where, and under which launcher."""

    nproc_per_node: int = 1
    nnodes: int = 1
    rdzv_endpoint: str | None = None  # "HOST:PORT", required when nnodes > 1
    rdzv_id: str = "gpuscout"
    timeout_s: float = 600.0
    slurm: SlurmTask | None = None  # set with slurm_tasks: this task is one rank
    slurm_tasks: bool = False

    @property
    def world_size(self) -> int:
        if self.slurm_tasks and self.slurm is not None:
            return self.slurm.world_size
        return self.nproc_per_node * self.nnodes

    @property
    def launcher(self) -> str:
        if self.slurm_tasks:
            return "slurm"
        return "torchrun (slurm)" if self.slurm is not None else "torchrun"


def parse_endpoint(text: str) -> tuple[str, int]:
    """ "HOST:PORT" (IPv6 as "[::1]:PORT") -> (host, port); UsageError otherwise."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"bad rendezvous endpoint {text!r}", "use HOST:PORT, e.g. node01:29400")
    return host, int(port)


def plan_launch(
    nproc_per_node: int | None = None,
    nnodes: int | None = None,
    rdzv_endpoint: str | None = None,
    *,
    timeout_s: float = 600.0,
    default_nproc: int = 1,
    environ: Mapping[str, str] | None = None,
) -> LaunchSpec:
    """Check the options against each other and against Slurm's environment."""
    _check_options(nproc_per_node, nnodes, rdzv_endpoint, timeout_s)
    slurm = detect_slurm(environ)
    if slurm is not None and slurm.world_size > 1:
        return _inside_slurm_step(
            slurm, nproc_per_node, nnodes, rdzv_endpoint, timeout_s, default_nproc
        )
    nodes = nnodes or 1
    if nodes > 1 and rdzv_endpoint is None:
        raise UsageError(
            f"--nnodes {nodes} needs --rdzv-endpoint HOST:PORT",
            "run the same command on every node, with one node's address as the endpoint",
        )
    return LaunchSpec(
        nproc_per_node=nproc_per_node or default_nproc,
        nnodes=nodes,
        rdzv_endpoint=rdzv_endpoint,
        timeout_s=timeout_s,
        slurm=slurm,
    )


def _check_options(
    nproc_per_node: int | None, nnodes: int | None, rdzv_endpoint: str | None, timeout_s: float
) -> None:
    """Each option on its own: counts of at least 1, a timeout, a HOST:PORT endpoint."""
    if nproc_per_node is not None and nproc_per_node < 1:
        raise UsageError(f"--nproc-per-node must be at least 1, not {nproc_per_node}")
    if nnodes is not None and nnodes < 1:
        raise UsageError(f"--nnodes must be at least 1, not {nnodes}")
    if timeout_s <= 0:
        raise UsageError(f"--timeout must be more than 0 seconds, not {timeout_s:g}")
    if rdzv_endpoint is not None:
        parse_endpoint(rdzv_endpoint)


def _inside_slurm_step(
    slurm: SlurmTask,
    nproc_per_node: int | None,
    nnodes: int | None,
    rdzv_endpoint: str | None,
    timeout_s: float,
    default_nproc: int,
) -> LaunchSpec:
    """Slurm's tasks are the ranks; or, with one task per node and --nproc-per-node or
    --nnodes, each task starts torchrun with the node list's first host as rendezvous."""
    if nproc_per_node is None and nnodes is None:
        return LaunchSpec(
            nproc_per_node=slurm.local_world_size,
            nnodes=slurm.nnodes,
            rdzv_endpoint=rdzv_endpoint,
            rdzv_id=f"slurm-{slurm.job_id}",
            timeout_s=timeout_s,
            slurm=slurm,
            slurm_tasks=True,
        )
    if not slurm.one_task_per_node:
        raise UsageError(
            f"inside a Slurm step with {slurm.world_size} tasks, each task is one rank",
            "drop --nproc-per-node/--nnodes, or run one task per node (--ntasks-per-node=1)",
        )
    if nnodes is not None and nnodes != slurm.nnodes:
        raise UsageError(f"--nnodes {nnodes} but the Slurm step spans {slurm.nnodes} nodes")
    return LaunchSpec(
        nproc_per_node=nproc_per_node or default_nproc,
        nnodes=slurm.nnodes,
        rdzv_endpoint=rdzv_endpoint or f"{slurm.master_addr}:{slurm.master_port}",
        rdzv_id=f"slurm-{slurm.job_id}",
        timeout_s=timeout_s,
        slurm=slurm,
    )


def torchrun_command(
    spec: LaunchSpec, request: Path, out_dir: Path, python: str = sys.executable
) -> list[str]:
    """The torchrun command line for one node of the job."""
    cmd = [python, "-m", "torch.distributed.run"]
    if spec.nnodes == 1 and spec.rdzv_endpoint is None:
        cmd += ["--standalone", "--nnodes", "1"]
    else:
        assert spec.rdzv_endpoint is not None
        cmd += [
            "--nnodes",
            str(spec.nnodes),
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            spec.rdzv_endpoint,
            "--rdzv-id",
            spec.rdzv_id,
            # Waiting for the other nodes counts against the job's own bound.
            "--rdzv-conf",
            f"join_timeout={max(1, round(spec.timeout_s))}",
        ]
    cmd += [
        "--nproc-per-node",
        str(spec.nproc_per_node),
        "--max-restarts",
        "0",  # a benchmark rank that failed once fails again: report, do not retry
        "--monitor-interval",
        "0.5",
        "-m",
        ENTRY,
        str(request),
        str(out_dir),
    ]
    return cmd


def rank_environment(spec: LaunchSpec, base: Mapping[str, str]) -> dict[str, str]:
    """The variables torchrun would set, from Slurm's, for a rank started directly."""
    s = spec.slurm
    if not spec.slurm_tasks or s is None:
        raise ValueError("rank_environment is for Slurm tasks only")
    env = dict(base)
    addr, port = (
        parse_endpoint(spec.rdzv_endpoint) if spec.rdzv_endpoint else (s.master_addr, s.master_port)
    )
    env.update(
        RANK=str(s.rank),
        WORLD_SIZE=str(s.world_size),
        LOCAL_RANK=str(s.local_rank),
        LOCAL_WORLD_SIZE=str(s.local_world_size),
        GROUP_RANK=str(s.node_rank),
        MASTER_ADDR=addr,
        MASTER_PORT=str(port),
    )
    return env


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended, seen from this node. ``value`` is rank 0's dict when this node
    ran rank 0 and every rank finished; ``message`` names the failed rank otherwise."""

    ok: bool
    value: dict[str, Any] | None
    local_ranks: tuple[int, ...]
    duration_s: float
    returncode: int | None
    timed_out: bool = False
    message: str | None = None
    culprits: tuple[int, ...] = ()
    job_dir: str | None = None  # kept after a failure, for the logs


def _alive_rank(pid: int, out_dir: Path) -> bool:
    """Is ``pid`` still one of this job's ranks (not a reused pid)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): trust the pid, it is only seconds old
        return True
    return ENTRY.encode() in cmdline and str(out_dir).encode() in cmdline


def _rank_pids(out_dir: Path) -> list[int]:
    pids = []
    for p in out_dir.glob("rank-*.progress.json"):
        try:
            pids.append(int(json.loads(p.read_text())["pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return pids


def _signal(pid: int, sig: int, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _stop(proc: subprocess.Popen[bytes], out_dir: Path) -> None:
    """SIGTERM the launcher's group and every rank, SIGKILL what is left after a grace."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is None:
            _signal(proc.pid, sig, group=True)
        for pid in _rank_pids(out_dir):
            if _alive_rank(pid, out_dir):
                _signal(pid, sig)
        deadline = time.monotonic() + _STOP_GRACE_S
        while time.monotonic() < deadline:
            if proc.poll() is not None and not any(
                _alive_rank(p, out_dir) for p in _rank_pids(out_dir)
            ):
                return
            time.sleep(0.1)
    proc.wait(_STOP_GRACE_S)


def _report(out_dir: Path, progress: Progress | None) -> None:
    if progress is None:
        return
    files = sorted(out_dir.glob("rank-*.progress.json"))
    if not files:
        return
    try:
        p = json.loads(files[0].read_text())
    except (OSError, ValueError):
        return  # replaced between listing and reading: the next poll gets it
    # total 0: not known yet (rank 0 announces it once its plan is made)
    progress(str(p.get("phase", "")), int(p.get("step", 0)), int(p.get("total") or 0))


def run_job(
    target: str,
    kwargs: Mapping[str, Any],
    spec: LaunchSpec,
    *,
    backend: str,
    device: str,
    pg_timeout_s: float | None = None,
    fault: str | None = None,
    progress: Progress | None = None,
    work_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> JobOutcome:
    """Run ``target(ctx, **kwargs)`` on every rank of this node; see the module docstring.

    ``target`` is "module:function" (importable by the ranks). ``pg_timeout_s`` bounds
    each collective (default: the job's timeout). ``work_dir`` None: a temporary
    directory, removed when the job succeeds. Ctrl-C stops the job and propagates.
    """
    base_env = dict(os.environ if environ is None else environ)
    base_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())
    out_dir = Path(tempfile.mkdtemp(prefix="gpuscout-dist-")) if work_dir is None else work_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    request = out_dir / "request.json"
    request.write_text(
        json.dumps(
            {
                "target": target,
                "kwargs": dict(kwargs),
                "backend": backend,
                "device": device,
                "pg_timeout_s": float(pg_timeout_s or spec.timeout_s),
                "fault": fault,
            }
        )
    )
    command = _command(spec, request, out_dir, base_env)
    code, timed_out, duration = _launch(command, out_dir, spec.timeout_s, progress)
    states = diagnose.read_states(out_dir, command.expected)
    finished = [s for s in states.values() if s.finished]
    if not timed_out and code == 0 and states and len(finished) == len(states) >= command.local:
        return _succeeded(out_dir, states, duration, code, remove=work_dir is None)
    return _failed(out_dir, spec, states, code, timed_out, duration)


@dataclass(frozen=True)
class _Command:
    """What this node starts, and the ranks it answers for."""

    argv: list[str]
    env: dict[str, str]
    local: int  # ranks started on this node
    expected: list[int]  # ranks whose files should appear here ([]: not known in advance)


def _command(spec: LaunchSpec, request: Path, out_dir: Path, base_env: dict[str, str]) -> _Command:
    if spec.slurm_tasks:
        # This task is one rank; the node's other tasks are other gpuscouts.
        return _Command(
            [sys.executable, "-m", ENTRY, str(request), str(out_dir)],
            rank_environment(spec, base_env),
            1,
            [spec.slurm.rank] if spec.slurm else [0],
        )
    return _Command(
        torchrun_command(spec, request, out_dir),
        base_env,
        spec.nproc_per_node,
        list(range(spec.nproc_per_node)) if spec.nnodes == 1 else [],
    )


def _launch(
    command: _Command, out_dir: Path, timeout_s: float, progress: Progress | None
) -> tuple[int | None, bool, float]:
    """Start the command and wait for it, reporting progress and stopping it past the
    timeout or on Ctrl-C: (its exit code, whether it timed out, seconds it took)."""
    t0 = time.monotonic()
    with (out_dir / "launcher.log").open("wb") as sink:
        proc = subprocess.Popen(
            command.argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=command.env,
            start_new_session=True,
        )
        try:
            timed_out = _wait(proc, out_dir, t0, timeout_s, progress)
        except BaseException:
            _stop(proc, out_dir)
            raise
        # torchrun stops its workers on the way out; a rank of a crashed launcher may not.
        if any(_alive_rank(p, out_dir) for p in _rank_pids(out_dir)):
            _stop(proc, out_dir)
    return proc.returncode, timed_out, time.monotonic() - t0


def _wait(
    proc: subprocess.Popen[bytes],
    out_dir: Path,
    t0: float,
    timeout_s: float,
    progress: Progress | None,
) -> bool:
    """Poll until the launcher exits (False), or stop it past the timeout (True)."""
    while proc.poll() is None:
        _report(out_dir, progress)
        if time.monotonic() - t0 > timeout_s:
            _stop(proc, out_dir)
            return True
        time.sleep(POLL_S)
    return False


def _succeeded(
    out_dir: Path,
    states: Mapping[int, diagnose.RankState],
    duration: float,
    code: int | None,
    *,
    remove: bool,
) -> JobOutcome:
    value = None
    if 0 in states:
        value = json.loads((out_dir / "rank-0.json").read_text()).get("value")
    if remove:
        shutil.rmtree(out_dir, ignore_errors=True)
    return JobOutcome(True, value, tuple(sorted(states)), duration, code)


def _failed(
    out_dir: Path,
    spec: LaunchSpec,
    states: Mapping[int, diagnose.RankState],
    code: int | None,
    timed_out: bool,
    duration: float,
) -> JobOutcome:
    """The outcome naming the failed rank, from the rank files and the launcher's log."""
    text = (out_dir / "launcher.log").read_text(errors="replace")
    codes, root = diagnose.parse_torchrun_log(text)
    if spec.slurm_tasks and code is not None and code != 0 and spec.slurm is not None:
        codes.setdefault(spec.slurm.rank, code)  # this task's rank is the process it ran
    verdict = diagnose.diagnose(
        states,
        timed_out=timed_out,
        timeout_s=spec.timeout_s,
        exitcodes=codes,
        root_rank=root,
        returncode=code,
        collective_timeout=diagnose.collective_timed_out(text),
    )
    return JobOutcome(
        ok=False,
        value=None,
        local_ranks=tuple(sorted(states)),
        duration_s=duration,
        returncode=code,
        timed_out=timed_out,
        message=verdict.message,
        culprits=verdict.culprits,
        job_dir=str(out_dir),
    )
