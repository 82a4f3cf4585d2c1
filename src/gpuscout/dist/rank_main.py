"""One rank of a multi-process job: ``python -m gpuscout.dist.rank_main REQUEST OUT_DIR``.

torchrun (or, under Slurm, the gpuscout task itself) starts this once per rank with
RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set.
REQUEST is a JSON file: the target ("module:function", called as ``fn(ctx, **kwargs)``
and returning a JSON-able dict), the backend, the device kind, the process-group timeout
and an optional fault to inject. The rank writes, atomically, in OUT_DIR:

- ``rank-R.progress.json`` at every phase (pid, phase, step), from its first line on;
- ``rank-R.json`` when the whole job got through (after a final barrier, so a rank-0
  file means every rank finished its part);
- ``rank-R.error.json`` with the traceback if anything raised, then exits with code 1
  at once (``os._exit``: after a failed collective, NCCL's teardown can itself hang).

A rank that dies (a signal, ``os._exit``) or hangs writes nothing more; the launcher
finds out from what is missing.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from gpuscout.dist.rank import (
    RankContext,
    error_path,
    parse_fault,
    result_path,
    write_json,
)


def _resolve(target: str) -> Any:
    module, qualname = target.split(":")
    fn: Any = importlib.import_module(module)
    for part in qualname.split("."):
        fn = getattr(fn, part)
    return fn


def _device(kind: str, local_rank: int) -> str:
    """ "cuda" -> this rank's GPU; ranks beyond the GPU count share GPUs round-robin."""
    if kind != "cuda":
        return "cpu"
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        raise RuntimeError("the job asked for CUDA but this rank sees no CUDA device")
    index = local_rank % count
    torch.cuda.set_device(index)
    return f"cuda:{index}"


def _init(ctx: RankContext, request: dict[str, Any]) -> None:
    import datetime

    import torch
    import torch.distributed as dist

    kwargs: dict[str, Any] = {
        "backend": ctx.backend,
        "timeout": datetime.timedelta(seconds=float(request["pg_timeout_s"])),
    }
    if ctx.backend == "nccl":
        # Binds the communicator to this rank's GPU at once (no guessing from the rank).
        kwargs["device_id"] = torch.device(ctx.device)
    dist.init_process_group(**kwargs)


def run(request: dict[str, Any], out_dir: Path, environ: dict[str, str]) -> int:
    ctx = RankContext(
        rank=int(environ.get("RANK", "0")),
        world_size=int(environ.get("WORLD_SIZE", "1")),
        local_rank=int(environ.get("LOCAL_RANK", "0")),
        local_world_size=int(environ.get("LOCAL_WORLD_SIZE", "1")),
        out_dir=out_dir,
        backend=str(request.get("backend", "gloo")),
        hostname=socket.gethostname(),
    )
    try:
        ctx.fault = parse_fault(request.get("fault"))
        ctx.progress("starting")
        ctx.device = _device(str(request.get("device", "cpu")), ctx.local_rank)
        _init(ctx, request)
        ctx.progress("process group ready")
        value = _resolve(str(request["target"]))(ctx, **dict(request.get("kwargs", {})))
        if not isinstance(value, dict):
            raise TypeError(f"a rank's target must return a dict, not {type(value).__name__}")
        ctx.progress("finishing")
        ctx.barrier()
        write_json(
            result_path(out_dir, ctx.rank),
            {"rank": ctx.rank, "host": ctx.hostname, "device": ctx.device, "value": value},
        )
    except BaseException as exc:
        write_json(
            error_path(out_dir, ctx.rank),
            {
                "rank": ctx.rank,
                "host": ctx.hostname,
                "time": time.time(),
                "phase": ctx.phase,
                "step": ctx.step,
                "type": type(exc).__name__,
                "message": str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                "traceback": traceback.format_exc(),
            },
        )
        sys.stderr.write(f"[gpuscout rank {ctx.rank}] {traceback.format_exc()}")
        sys.stderr.flush()
        os._exit(1)
    import torch.distributed as dist

    dist.destroy_process_group()
    return 0


def main(argv: list[str]) -> int:
    request_path, out_dir = Path(argv[0]), Path(argv[1])
    request = json.loads(request_path.read_text())
    return run(request, out_dir, dict(os.environ))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
