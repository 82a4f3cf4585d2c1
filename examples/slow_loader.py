"""A training loop that waits on its data: each sample is "decoded" in Python as it is
read (here a 2 ms busy wait stands in for JPEG decoding and augmentation), with the
DataLoader's default of no worker processes. The model is small, so almost all of each
step is spent waiting for the next batch.

    python examples/slow_loader.py [--steps 40] [--decode-ms 2] [--device cpu]
"""

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class DecodedImages(Dataset[tuple[torch.Tensor, int]]):
    def __init__(self, n: int, decode_ms: float) -> None:
        self.n, self.decode_s = n, decode_ms / 1000

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        end = time.perf_counter() + self.decode_s
        while time.perf_counter() < end:  # decoding, in Python, one sample at a time
            pass
        g = torch.Generator().manual_seed(i)
        return torch.rand(3, 32, 32, generator=g), i % 10


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--decode-ms", type=float, default=2.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    loader = DataLoader(DecodedImages(16 * args.steps, args.decode_ms), batch_size=16)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 64), nn.ReLU(), nn.Linear(64, 10))
    model = model.to(args.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for x, y in loader:
        x, y = x.to(args.device), y.to(args.device)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"final loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
