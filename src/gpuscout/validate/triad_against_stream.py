"""Compare gpuscout's host-memory triad with a compiled STREAM-style triad, side by side.

    python scripts/stream_compare.py [--rounds 3] [--reps 20]

Compiles scripts/stream_triad.c (gcc -O3 -march=native -fopenmp), then alternates, for
each round, ``gpuscout bench micro --device cpu --only memory --json --no-store`` and the
C program on the same array size (elements per array, read from gpuscout's result) and
the same thread count. Alternating matters on shared or virtual machines whose memory
bandwidth drifts: both programs see the same neighbours. Prints each round and the
median over rounds of each program's median GB/s (1e9 bytes), and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The C program stays a file of the checkout's scripts/ (its header says how to build it
# by hand); this module compiles it from there.
STREAM_C = Path(__file__).resolve().parents[3] / "scripts" / "stream_triad.c"


def compile_stream(out_dir: Path) -> Path:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        sys.exit("no C compiler found (install gcc)")
    exe = out_dir / "stream_triad"
    cmd = [cc, "-O3", "-march=native", "-fopenmp", str(STREAM_C), "-o", str(exe)]
    subprocess.run(cmd, check=True)
    return exe


def gpuscout_triad(python: str) -> dict[str, Any]:
    """The triad Result from the CLI (or the library call, where `bench` is not wired in)."""
    cmd = [python, "-m", "gpuscout", "bench", "micro", "--device", "cpu", "--only", "memory"]
    proc = subprocess.run(
        [*cmd, "--json", "--no-store"], capture_output=True, text=True, check=False
    )
    if proc.returncode == 0:
        results = json.loads(proc.stdout)["results"]
    else:
        code = (
            "import json; from gpuscout.bench import run_micro; from gpuscout._types import "
            "to_jsonable; print(json.dumps(to_jsonable(run_micro('cpu', 'memory'))))"
        )
        proc2 = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
        results = json.loads(proc2.stdout.strip().splitlines()[-1])
        print(f"(CLI unavailable: {proc.stderr.strip().splitlines()[-1:]}; used run_micro)")
    triad = next(r for r in results if r["name"] == "memory/triad")
    if triad["status"] != "ok":
        sys.exit(f"gpuscout triad {triad['status']}: {triad['error']}")
    return dict(triad)


def c_triad(exe: Path, elems: int, threads: int, reps: int) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(
        [str(exe), str(elems), str(reps)], env=env, capture_output=True, text=True, check=True
    ).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines())}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=20, help="repetitions inside the C program")
    ap.add_argument("--python", default=sys.executable, help="python with gpuscout installed")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        exe = compile_stream(Path(tmp))
        ours: list[float] = []
        theirs: list[float] = []
        ours_best: list[float] = []
        theirs_best: list[float] = []
        for i in range(1, args.rounds + 1):
            t = gpuscout_triad(args.python)
            elems, threads = int(t["extra"]["elems"]), int(t["extra"]["threads"])
            c = c_triad(exe, elems, threads, args.reps)
            best = t["extra"]["bytes_per_iter"] / t["stats"]["min_s"] / 1e9
            ours.append(float(t["figure"]))
            ours_best.append(best)
            theirs.append(c["triad_median_gbs"])
            theirs_best.append(c["triad_best_gbs"])
            print(
                f"round {i}: {elems} doubles/array ({elems * 8 / 2**20:.0f} MiB), "
                f"{threads} threads | gpuscout triad {t['figure']:.1f} GB/s median of "
                f"{t['stats']['n']}, {best:.1f} best | C triad {c['triad_median_gbs']:.1f} "
                f"GB/s median of {args.reps}, {c['triad_best_gbs']:.1f} best"
            )
    for label, g, s in (
        ("median", statistics.median(ours), statistics.median(theirs)),
        ("best", max(ours_best), max(theirs_best)),
    ):
        print(
            f"{label:>6}: gpuscout triad {g:.1f} GB/s | C STREAM triad {s:.1f} GB/s | "
            f"ratio {g / s:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
