"""Replay trials.py's steps on fake tensors and count live bytes: the memory autograd
and the optimizer would hold, without a GPU and without allocating anything.

This checks fit's arithmetic against what PyTorch actually keeps (which tensors autograd
saves, when they are freed, the optimizer's temporaries); it cannot see what only a GPU
adds (the CUDA context, cuDNN/cuBLAS workspaces, kernel-specific temporaries, the
allocator's rounding), and CPU kernels stand in for CUDA ones. ``--measure`` on a GPU is
the real check; scripts/fit_validate.py --simulate runs this one.
"""

from __future__ import annotations

import weakref
from typing import Any

from gpuscout.fit.request import FitRequest


def _tracker_class() -> Any:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class LiveBytes(TorchDispatchMode):
        """Counts the bytes of every storage an op creates until it is freed."""

        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.live: dict[int, int] = {}
            self.current = self.peak = 0
            self.peak_op = ""

        def _free(self, key: int) -> None:
            self.current -= self.live.pop(key, 0)

        def reset_peak(self) -> None:
            self.peak, self.peak_op = self.current, ""

        def __torch_dispatch__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                if not isinstance(t, torch.Tensor):
                    continue
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self.live:
                    self.live[key] = storage.nbytes()
                    self.current += self.live[key]
                    weakref.finalize(storage, self._free, key)
            if self.current > self.peak:
                self.peak, self.peak_op = self.current, str(func)
            return out

    return LiveBytes


def simulate_peak(req: FitRequest, batch: int | None = None) -> dict[str, Any]:
    """Peak live bytes of the second ``trial`` at ``batch`` (default: the request's), the
    bytes held before it (weights, optimizer states) and the op at the peak."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    from gpuscout.fit.measure.trials import Job

    n = batch or req.batch_size
    with FakeTensorMode(allow_non_fake_inputs=True), _tracker_class()() as live:
        job = Job(req, torch.device("cpu"))
        job.trial(n)  # the first trial creates the optimizer's states
        static = live.current
        live.reset_peak()
        job.trial(n)
        return {"batch": n, "static_bytes": static, "peak_bytes": live.peak, "op": live.peak_op}
