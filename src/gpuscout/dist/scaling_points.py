"""What one data-parallel scaling point trains, on the ranks of one process group.

``DdpPoint``: a gpuscout workload (tuned, eager) wrapped in DDP; ``FsdpPoint``: a
workload's Llama-shaped decoder sharded with FSDP2. Each has ``step()``,
``local()`` (a context without gradient synchronisation) and ``fingerprint()`` (a
parameter sum equal on every replica, or None when parameters are sharded).
``dist.scaling`` times them; the module docstring there says what is measured.
"""

from __future__ import annotations

from typing import Any

from gpuscout.dist.rank import RankContext


class DdpPoint:
    """A gpuscout workload (its record's scaling is "ddp") under DDP on ``group``."""

    def __init__(self, ctx: RankContext, workload: str, s: dict[str, Any], quick: bool) -> None:
        from gpuscout.workloads import get
        from gpuscout.workloads.base import WorkloadConfig

        spec = get(workload)
        device = ctx.torch_device()
        # The size goes where the workload reads it: the --seq-len flag, or an option.
        length = spec.length_name
        cfg = WorkloadConfig(
            workload,
            device=ctx.device,
            impl="tuned",
            model=s["model"],
            batch_size=s["batch"],
            seq_len=s["size"] if length == "seq_len" else None,
            seed=ctx.rank,
            compile=False,
            quick=quick,
            options={length: s["size"]} if length and length != "seq_len" else {},
        )
        self.wl = spec.build(cfg, device)
        self.device = device
        self.samples = int(self.wl.samples_per_step)
        self.params = list(self.wl.eager.parameters())
        self.last: Any = None

    def trial(self) -> None:
        """One step on this rank alone, before DDP: the memory a step needs (under DDP
        the gradients are views of its buckets, no more). It changes the parameters:
        the point is built anew after it."""
        self.wl.step(self.wl.make_batch())

    def wrap(self, group: Any) -> DdpPoint:
        """Wrap the model in DDP (a collective: every rank of ``group`` calls it)."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        self.ddp = DDP(
            self.wl.eager,
            process_group=group,
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
            broadcast_buffers=False,
            # Gradients live in the all-reduce buckets: no bucket copies to time or hold,
            # so the trial step (plain gradients) needs what the timed step needs.
            gradient_as_bucket_view=True,
        )
        self.wl.model = self.ddp
        return self

    def step(self) -> None:
        self.last = self.wl.step(self.wl.make_batch())

    def local(self) -> Any:
        return self.ddp.no_sync()

    def fingerprint(self) -> float | None:
        """Sum of all parameters in fp64: equal on every replica when they are in sync."""
        import torch

        with torch.no_grad():
            return float(sum(p.detach().double().sum() for p in self.params))


class FsdpPoint:
    """A workload's Llama-shaped decoder (its model-table row) trained with FSDP2 on
    ``group``."""

    def __init__(self, ctx: RankContext, workload: str, s: dict[str, Any], group: Any) -> None:
        import torch
        import torch.distributed as dist
        from torch.distributed.device_mesh import DeviceMesh
        from torch.distributed.fsdp import fully_shard

        from gpuscout.workloads import get
        from gpuscout.workloads.base import native_bf16
        from gpuscout.workloads.llama import LlamaShape, make_llama

        device = ctx.torch_device()
        shape = LlamaShape.from_spec(get(workload).model_spec(s["model"]))
        # The mesh is named, never left to fully_shard's default: that one is built on
        # torch's accelerator, CUDA on a GPU machine even when the ranks run on the CPU.
        pg: Any = group if group is not None else dist.group.WORLD
        mesh = DeviceMesh.from_group(pg, device.type)
        torch.manual_seed(0)  # FSDP shards each rank's copy: every rank must start alike
        self.model = make_llama(shape, device, torch.float32, sdpa=True, max_len=s["size"]).train()
        for block in self.model.layers:
            fully_shard(block, mesh=mesh)
        fully_shard(self.model, mesh=mesh)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        gen = torch.Generator().manual_seed(1000 + ctx.rank)
        self.tokens = torch.randint(0, shape.vocab, (s["batch"], s["size"]), generator=gen).to(
            device
        )
        self.pos = torch.arange(s["size"], device=device)
        # The workloads' rule (bf16 where it is native, sm_80+), not is_bf16_supported(),
        # which also says yes where bf16 is only emulated.
        self.amp = device.type == "cuda" and native_bf16(device)
        self.device = device
        self.samples = s["batch"] * s["size"]  # tokens
        self.last: Any = None

    def step(self) -> None:
        import torch
        import torch.nn.functional as F

        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.amp):
            logits = self.model(self.tokens, self.pos)
        # The model returns the last position's logits (it is built for generation);
        # the blocks, which hold the parameters FSDP shards, run on every position.
        loss: Any = F.cross_entropy(logits[:, -1].float(), self.tokens[:, 0])
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.last = loss.detach()

    def local(self) -> Any:
        import contextlib

        model = self.model

        @contextlib.contextmanager
        def no_grad_sync() -> Any:
            model.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                model.set_requires_gradient_sync(True)

        return no_grad_sync()

    def fingerprint(self) -> float | None:
        return None  # parameters are sharded: no rank holds a full replica to compare
