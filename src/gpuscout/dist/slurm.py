"""Slurm: is gpuscout running inside an ``srun`` step, and as which rank?

Inside ``srun -n 8 gpuscout bench dist`` Slurm starts gpuscout eight times and tells each
copy who it is through its environment: ``SLURM_PROCID`` (the global rank),
``SLURM_NTASKS`` (the world size), ``SLURM_LOCALID`` (the rank on this node),
``SLURM_NODEID``, the node list and the job id. gpuscout then uses those ranks instead of
starting torchrun. The rank-0 address is the first host of the node list: ``scontrol
show hostnames`` may not exist inside a container, so the list's compressed syntax
(``gpu-[01-04,07],login1``) is expanded here.

A batch script (``sbatch``) also carries ``SLURM_PROCID=0`` and ``SLURM_NTASKS=N`` while
being only one process; treating it as rank 0 of N would wait forever for N-1 ranks that
never come. Only a numbered job step (``SLURM_STEP_ID`` 0, 1, ...; the batch step has
none or is called "batch") counts as "inside srun".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gpuscout.errors import UsageError

# A port per job, so two jobs sharing a node do not collide on 29500. Ports from 20000
# to 39999 are outside Linux's default ephemeral range (32768-60999 overlaps only the top).
_PORT_BASE = 20000
_PORT_SPAN = 12000


@dataclass(frozen=True)
class SlurmTask:
    """This process as one task of a Slurm job step."""

    job_id: str
    step_id: str
    rank: int  # SLURM_PROCID
    world_size: int  # SLURM_NTASKS
    local_rank: int  # SLURM_LOCALID
    local_world_size: int  # tasks on this node
    node_rank: int  # SLURM_NODEID
    nnodes: int
    nodelist: str
    master_addr: str  # MASTER_ADDR if set, else the first host of the node list
    master_port: int  # MASTER_PORT if set, else derived from the job id

    @property
    def one_task_per_node(self) -> bool:
        return self.world_size == self.nnodes


def _split_top_level(spec: str) -> list[str]:
    """Split on commas that are not inside brackets: "a[1,3],b" -> ["a[1,3]", "b"]."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(spec):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise UsageError(f"malformed Slurm node list {spec!r}: unbalanced ']'")
        elif ch == "," and depth == 0:
            parts.append(spec[start:i])
            start = i + 1
    if depth != 0:
        raise UsageError(f"malformed Slurm node list {spec!r}: unbalanced '['")
    parts.append(spec[start:])
    return [p.strip() for p in parts if p.strip()]


def _expand_range(body: str, spec: str) -> list[str]:
    """ "01-03,7" -> ["01", "02", "03", "7"]; zero padding follows the lower bound."""
    out: list[str] = []
    for item in body.split(","):
        item = item.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if m is None:
            raise UsageError(f"malformed Slurm node list {spec!r}: bad range {item!r}")
        lo, hi = m.group(1), m.group(2)
        if hi is None:
            out.append(lo)
            continue
        if int(hi) < int(lo):
            raise UsageError(f"malformed Slurm node list {spec!r}: range {item!r} runs backwards")
        out.extend(str(i).zfill(len(lo)) for i in range(int(lo), int(hi) + 1))
    return out


def _expand_one(name: str, spec: str) -> list[str]:
    """One host expression, possibly with several bracket groups: "r[1-2]n[1-2]"."""
    m = re.search(r"\[([^\[\]]*)\]", name)
    if m is None:
        return [name]
    head, tail = name[: m.start()], name[m.end() :]
    return [
        host
        for value in _expand_range(m.group(1), spec)
        for host in _expand_one(head + value + tail, spec)
    ]


def expand_nodelist(spec: str) -> list[str]:
    """Slurm's compressed host list as host names, in order."""
    hosts = [h for part in _split_top_level(spec) for h in _expand_one(part, spec)]
    if not hosts:
        raise UsageError(f"empty Slurm node list {spec!r}")
    return hosts


def first_host(spec: str) -> str:
    """The first host of a node list: where rank 0 runs under Slurm's block distribution."""
    return expand_nodelist(spec)[0]


def tasks_per_node(spec: str) -> list[int]:
    """SLURM_TASKS_PER_NODE, e.g. "2(x3),1" -> [2, 2, 2, 1]."""
    out: list[int] = []
    for item in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", item)
        if m is None:
            raise UsageError(f"malformed SLURM_TASKS_PER_NODE {spec!r}")
        out.extend([int(m.group(1))] * int(m.group(2) or 1))
    return out


def job_port(job_id: str) -> int:
    """A port derived from the job id: every task of the job computes the same one."""
    digits = re.sub(r"\D", "", job_id)
    return _PORT_BASE + (int(digits) % _PORT_SPAN if digits else 0)


def _int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise UsageError(f"{name}={env[name]!r} is not a number") from None


def detect_slurm(environ: Mapping[str, str] | None = None) -> SlurmTask | None:
    """The Slurm task this process is, or None outside an ``srun`` job step."""
    env = os.environ if environ is None else environ
    needed = ("SLURM_JOB_ID", "SLURM_PROCID", "SLURM_NTASKS")
    if any(name not in env for name in needed):
        return None
    step = env.get("SLURM_STEP_ID", env.get("SLURM_STEPID", ""))
    if not step.isdigit():  # the batch script, or an allocation without a step
        return None
    nodelist = env.get(
        "SLURM_STEP_NODELIST", env.get("SLURM_JOB_NODELIST", env.get("SLURM_NODELIST", ""))
    )
    if not nodelist:
        raise UsageError("inside a Slurm step but SLURM_STEP_NODELIST/SLURM_NODELIST is empty")
    hosts = expand_nodelist(nodelist)
    node_rank = _int(env, "SLURM_NODEID") if "SLURM_NODEID" in env else 0
    per_node_spec = env.get("SLURM_STEP_TASKS_PER_NODE", env.get("SLURM_TASKS_PER_NODE", ""))
    if per_node_spec:
        counts = tasks_per_node(per_node_spec)
        local_world = counts[node_rank] if node_rank < len(counts) else counts[-1]
    else:
        local_world = int(env.get("SLURM_NTASKS_PER_NODE", "1") or 1)
    job_id = env["SLURM_JOB_ID"]
    port = env.get("MASTER_PORT")
    return SlurmTask(
        job_id=job_id,
        step_id=step,
        rank=_int(env, "SLURM_PROCID"),
        world_size=_int(env, "SLURM_NTASKS"),
        local_rank=_int(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0,
        local_world_size=local_world,
        node_rank=node_rank,
        nnodes=int(env.get("SLURM_STEP_NUM_NODES", env.get("SLURM_NNODES", len(hosts)))),
        nodelist=nodelist,
        master_addr=env.get("MASTER_ADDR") or hosts[0],
        master_port=int(port) if port and port.isdigit() else job_port(job_id),
    )
