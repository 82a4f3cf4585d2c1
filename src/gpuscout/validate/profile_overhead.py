"""The profiler's own cost on a training step: the same step timed with and without
`gpuscout profile`'s hooks installed, in alternating blocks.

    python -m gpuscout.validate.profile_overhead [--only cnn,mlp] [--blocks 20] [--device cpu]

Two loops as the examples write them: ``cnn`` (examples/small_cnn.py: a small CNN at
batch 128, data in memory; the compute-bound case the goal is stated for) and ``mlp``
(examples/fashion_mnist_mlp.py: 784-128-10 at batch 32 through a DataLoader; the
per-step-overhead case, where a fixed cost per step weighs most). Each block times the
step with ``timing.measure`` plain, then with the observer installed as ``profile.boot``
installs it (the optimizer-step hook, the DataLoader and tensor-method wrappers), after
its counted step (FlopCounterMode, once per run) has passed. Blocks alternate, and each
profiled block is divided by the plain block just before it: a shared or virtual
machine's speed drifts by more than the hooks cost, and a pair sees the same drift.
Prints, per loop, the median of those ratios with their 10th and 90th percentiles;
``--out`` writes every block as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from gpuscout.profile.hooks import Observer
from gpuscout.timing import measure

Step = Callable[[], None]


def cnn_step(torch: Any, device: str) -> Step:
    """One step of examples/small_cnn.py."""
    nn = torch.nn
    torch.manual_seed(0)
    x = torch.randn(128, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (128,), device=device)
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(128, 256, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 10),
    ).to(device)  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(torch, device)

    return step


def mlp_step(torch: Any, device: str) -> Step:
    """One step of examples/fashion_mnist_mlp.py, its batch from a DataLoader."""
    nn = torch.nn
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(
        torch.rand(6400, 1, 28, 28), torch.randint(0, 10, (6400,))
    )
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = _forever(loader)

    def step() -> None:
        x, y = next(batches)
        x, y = x.to(device), y.to(device)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()  # the tutorial's running loss: one read of the device per step

    return step


def _forever(loader: Any) -> Iterator[Any]:
    while True:
        yield from loader


def _sync(torch: Any, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


LOOPS: dict[str, Callable[[Any, str], Step]] = {"cnn": cnn_step, "mlp": mlp_step}


def timed(step: Step, min_time_s: float) -> float:
    """The median step time of one block (timing.measure: warm-up, repeats)."""
    return measure(step, warmup=2, min_iters=5, min_time_s=min_time_s).stats.median_s


def overhead(torch: Any, name: str, device: str, blocks: int) -> dict[str, Any]:
    step = LOOPS[name](torch, device)
    min_time = 1.5 if name == "cnn" else 0.5
    plain: list[float] = []
    hooked: list[float] = []
    with tempfile.TemporaryDirectory(prefix="gpuscout-overhead-") as tmp:
        for _ in range(blocks):
            plain.append(timed(step, min_time))
            observer = Observer(Path(tmp) / "obs.json", warmup=3, steps=None)
            observer.install(torch)
            try:
                for _ in range(observer.warmup + 1):  # past the counted step
                    step()
                hooked.append(timed(step, min_time))
            finally:
                observer.uninstall()
    ratios = sorted(h / p for p, h in zip(plain, hooked, strict=True))
    low, high = _spread(ratios)
    return {
        "loop": name,
        "device": device,
        "blocks": blocks,
        "plain_median_s": statistics.median(plain),
        "profiled_median_s": statistics.median(hooked),
        "overhead": statistics.median(ratios) - 1,
        "overhead_p10": low - 1,
        "overhead_p90": high - 1,
        "plain_blocks_s": plain,
        "profiled_blocks_s": hooked,
    }


def _spread(ratios: list[float]) -> tuple[float, float]:
    """The 10th and 90th percentiles (the extremes for fewer than 10 blocks)."""
    if len(ratios) < 10:
        return ratios[0], ratios[-1]
    deciles = statistics.quantiles(ratios, n=10)
    return deciles[0], deciles[-1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="cnn,mlp")
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    import torch

    rows = []
    for name in args.only.split(","):
        row = overhead(torch, name, args.device, args.blocks)
        rows.append(row)
        print(
            f"{name} on {args.device}: plain {1e3 * row['plain_median_s']:.3f} ms a step; "
            f"profiled/plain over {row['blocks']} paired blocks: median "
            f"{100 * row['overhead']:+.2f}% (p10 {100 * row['overhead_p10']:+.2f}%, "
            f"p90 {100 * row['overhead_p90']:+.2f}%)",
            flush=True,
        )
    if args.out:
        args.out.write_text(json.dumps({"torch": torch.__version__, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
