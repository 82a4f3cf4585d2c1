"""Real 2-process jobs on this CPU machine: torchrun, gloo over loopback, no mocks.

Collectives are verified inside the ranks; DDP and FSDP scaling run tiny models; a rank
that exits, is killed, hangs or returns a wrong sum is named, within a bounded time, and
the store holds no half-written run. Each job takes a few seconds (torch's import in
every rank is most of it)."""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("torch")

from gpuscout.cli.dist import register_dist
from gpuscout.dist import job as dist
from gpuscout.dist.torchrun import _alive_rank, _rank_pids
from gpuscout.store import Store

SMALL = ("--only", "collectives", "--ops", "all_reduce", "--max-size", "4K", "--quick")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GPUSCOUT_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("GPUSCOUT_DIST_FAULT", raising=False)
    for name in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(name)
    # A failed job keeps its directory for the logs: keep it inside this test's tmp.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def invoke(*args: str) -> Any:
    app = typer.Typer()
    bench = typer.Typer()

    @bench.callback()
    def _bench() -> None:
        """Benchmarks."""

    register_dist(bench)
    app.add_typer(bench, name="bench")
    return CliRunner().invoke(app, ["bench", "dist", *args])


def runs(db: Path) -> list[Any]:
    with Store(db) as store:
        return store.list_runs()


def test_collectives_and_scaling_on_two_ranks_store_one_verified_run(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    r = invoke(
        "--nproc-per-node",
        "2",
        "--quick",
        "--max-size",
        "16K",
        "--workload",
        "cnn,encoder,llm",
        "--json",
        "--db",
        str(db),
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    results = doc["results"]
    coll = [x for x in results if not x["name"].startswith("dist/scaling/")]
    assert len(coll) == 3 * 3  # three collectives x 1, 4, 16 KiB
    for c in coll:
        e = c["extra"]
        assert c["status"] == "ok" and e["verified"] is True and e["ranks"] == 2
        assert e["time_s"] == max(e["rank_medians_s"])  # the slowest rank's median
        assert c["figure"] == pytest.approx(
            e["algbw_gbs"] * {"all_reduce": 1.0, "all_gather": 0.5, "broadcast": 1.0}[e["op"]]
        )
        assert e["algbw_gbs"] == pytest.approx(e["size_bytes"] / e["time_s"] / 1e9)
    scal = {
        (x["extra"]["scaled_workload"], x["extra"]["processes"]): x
        for x in results
        if x["name"].startswith("dist/scaling/")
    }
    assert set(scal) == {(w, k) for w in ("cnn", "encoder", "llm") for k in (1, 2)}
    for w in ("cnn", "encoder", "llm"):
        one, two = scal[(w, 1)], scal[(w, 2)]
        assert one["status"] == two["status"] == "ok", (one, two)
        assert one["extra"]["efficiency"] == pytest.approx(1.0)
        assert one["extra"]["comm_share"] is None  # one process exchanges nothing
        assert two["extra"]["efficiency"] == pytest.approx(two["figure"] / (2 * one["figure"]))
        assert 0.0 <= two["extra"]["comm_share"] < 1.0
        assert two["extra"]["parallel"] == ("fsdp" if w == "llm" else "ddp")
    stored = runs(db)
    assert len(stored) == 1 and stored[0].kind == "bench-dist" and stored[0].status == "ok"
    assert stored[0].summary["world_size"] == 2 and stored[0].summary["launcher"] == "torchrun"
    with Store(db) as store:
        assert len(store.results(stored[0].id)) == len(results)


def test_a_wrong_sum_is_reported_failed_and_not_timed(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    r = invoke(
        "--nproc-per-node",
        "2",
        "--only",
        "collectives",
        "--ops",
        "all_reduce,broadcast",
        "--max-size",
        "4K",
        "--quick",
        "--fault",
        "corrupt:1",
        "--json",
        "--db",
        str(db),
    )
    assert r.exit_code == 1, r.output
    results = json.loads(r.stdout)["results"]
    assert results and all(x["status"] == "failed" for x in results)
    for x in results:
        assert x["figure"] is None and "time_s" not in x["extra"]
        assert "1 of" in x["error"] and "values differ" in x["error"]
    stored = runs(db)  # the job itself finished: a complete run, marked failed
    assert len(stored) == 1 and stored[0].status == "failed"


def test_a_point_out_of_memory_on_one_rank_is_recorded_and_the_job_goes_on(
    tmp_path: Path,
) -> None:
    """Rank 1's allocator fails (a real 1 PiB request) on every point it is part of: the
    2-process points say so on every workload, the 1-process points (rank 0 alone) are
    measured, and the finished job is stored as one run."""
    db = tmp_path / "r.db"
    r = invoke(
        "--nproc-per-node",
        "2",
        "--only",
        "scaling",
        "--workload",
        "cnn,llm",
        "--quick",
        "--fault",
        "oom:1",
        "--json",
        "--db",
        str(db),
    )
    assert r.exit_code == 1, r.output  # a result that did not run: exit 1, as in bench micro
    points = {
        (x["extra"]["scaled_workload"], x["extra"]["processes"]): x
        for x in json.loads(r.stdout)["results"]
    }
    assert set(points) == {(w, k) for w in ("cnn", "llm") for k in (1, 2)}
    for w in ("cnn", "llm"):
        one, two = points[(w, 1)], points[(w, 2)]
        assert one["status"] == "ok" and one["figure"] > 0, one
        assert two["status"] == "oom" and two["figure"] is None, two
        assert "rank 1 ran out of memory" in two["error"] and "rank 0" not in two["error"]
        assert "efficiency" not in two["extra"]
    stored = runs(db)
    assert len(stored) == 1 and stored[0].kind == "bench-dist"
    with Store(db) as store:
        assert {x.status for x in store.results(stored[0].id)} == {"ok", "oom"}


@pytest.mark.parametrize(
    ("fault", "words"),
    [("exit:1", "rank 1 exited with code 3"), ("kill:1", "rank 1 was killed by SIGKILL")],
)
def test_a_dead_rank_is_named_and_nothing_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str, words: str
) -> None:
    db = tmp_path / "r.db"
    monkeypatch.setenv("GPUSCOUT_DIST_FAULT", fault)
    t0 = time.monotonic()
    r = invoke("--nproc-per-node", "2", *SMALL, "--timeout", "60", "--db", str(db))
    assert time.monotonic() - t0 < 60
    assert r.exit_code == 1
    assert words in r.stderr and "Traceback" not in r.output
    assert "nothing was stored" in r.stderr
    assert runs(db) == []


def test_a_hung_rank_is_stopped_within_the_timeout_and_named(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    timeout = 10.0
    t0 = time.monotonic()
    r = invoke(
        "--nproc-per-node",
        "2",
        *SMALL,
        "--timeout",
        str(timeout),
        "--fault",
        "hang:1",
        "--db",
        str(db),
    )
    elapsed = time.monotonic() - t0
    assert r.exit_code == 1
    assert elapsed < timeout + 15  # the timeout, then at most the stop grace periods
    assert "rank 1 hung" in r.stderr
    # gpuscout's timeout fires first (the collective's own timer starts seconds later,
    # once torch is imported); either way the hung rank is the one named.
    assert "10 s timeout" in r.stderr or "timed out waiting" in r.stderr
    assert runs(db) == []
    (job,) = tmp_path.glob("gpuscout-dist-*")  # kept for its logs
    pids = _rank_pids(job)
    assert len(pids) == 2 and not any(_alive_rank(p, job) for p in pids)


@contextmanager
def _rendezvous_store() -> Iterator[int]:
    """A TCP store this test hosts, as the launcher of both nodes, on a port the kernel
    picks; its port is handed on while the store still holds it. (Looking up a free port,
    releasing it and handing it on races every other process for it.) Launchers that
    find the port taken join as clients: torchrun's c10d rendezvous falls back to a
    client when hosting fails, and ranks started directly do with
    TORCHELASTIC_USE_AGENT_STORE, as under torchrun's agent."""
    # TCPStore is not in torch.distributed's typed exports
    torch_dist: Any = importlib.import_module("torch.distributed")
    store = torch_dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    try:
        yield int(store.port)
    finally:
        del store


def _two_launchers(make_plan: Any, envs: Sequence[dict[str, str] | None], tmp: Path) -> list[Any]:
    """Two gpuscout launchers at once, as on two nodes (or two Slurm tasks)."""
    out: list[Any] = [None, None]

    def node(i: int) -> None:
        try:
            out[i] = dist.run_dist(make_plan(envs[i]), work_dir=tmp / f"node{i}", environ=envs[i])
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=node, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def test_two_nodes_with_a_c10d_rendezvous(tmp_path: Path) -> None:
    with _rendezvous_store() as port:
        a, b = _two_c10d_nodes(f"127.0.0.1:{port}", tmp_path)
    assert isinstance(a, dist.DistRun) and isinstance(b, dist.DistRun), (a, b)
    (rank0,) = [x for x in (a, b) if x.has_rank0]
    (other,) = [x for x in (a, b) if not x.has_rank0]
    assert other.results == [] and other.local_ranks == (1,)
    assert [r.status for r in rank0.results] == ["ok", "ok"]  # 1 and 4 KiB
    assert rank0.summary["world_size"] == 2 and len(rank0.summary["ranks"]) == 2


def _two_c10d_nodes(endpoint: str, tmp_path: Path) -> list[Any]:
    def make(env: dict[str, str] | None) -> dist.DistPlan:
        return dist.plan(
            nproc_per_node=1,
            nnodes=2,
            rdzv_endpoint=endpoint,
            only="collectives",
            ops="all_gather",
            max_size="4K",
            quick=True,
            timeout_s=90,
            environ={},
        )

    return _two_launchers(make, [None, None], tmp_path)


def test_slurm_tasks_are_the_ranks(tmp_path: Path) -> None:
    with _rendezvous_store() as port:
        a, b = _two_slurm_tasks(port, tmp_path)
    assert isinstance(a, dist.DistRun) and isinstance(b, dist.DistRun), (a, b)
    assert a.has_rank0 and not b.has_rank0 and b.local_ranks == (1,)
    assert a.plan.spec.launcher == "slurm" and a.summary["slurm_job_id"] == "4242"
    assert [r.status for r in a.results] == ["ok", "ok"]  # 1 and 4 KiB


def _two_slurm_tasks(port: int, tmp_path: Path) -> list[Any]:
    envs = [
        dict(
            os.environ,
            SLURM_JOB_ID="4242",
            SLURM_STEP_ID="0",
            SLURM_PROCID=str(i),
            SLURM_NTASKS="2",
            SLURM_LOCALID=str(i),
            SLURM_NODEID="0",
            SLURM_NNODES="1",
            SLURM_STEP_NODELIST="localhost",
            SLURM_STEP_TASKS_PER_NODE="2",
            MASTER_PORT=str(port),
            TORCHELASTIC_USE_AGENT_STORE="True",  # the store is this test's: join it
        )
        for i in (0, 1)
    ]

    def make(env: dict[str, str] | None) -> dist.DistPlan:
        return dist.plan(
            only="collectives",
            ops="broadcast",
            max_size="4K",
            quick=True,
            timeout_s=90,
            environ=env,
        )

    return _two_launchers(make, envs, tmp_path)


def test_usage_errors_are_one_line_exit_2() -> None:
    for args, words in [
        (("--backend", "nccl"), "needs a CUDA GPU"),
        (("--nproc-per-node", "0"), "at least 1"),
        (("--nnodes", "2"), "needs --rdzv-endpoint"),
        (("--only", "colectives"), "did you mean collectives"),
        (("--workload", "bert"), "unknown scaling workload"),
        (("--max-size", "2G"), "at most 1G"),
        (("--device", "tpu"), "unknown device"),
    ]:
        r = invoke(*args)
        assert r.exit_code == 2, (args, r.output)
        assert words in r.stderr and "Traceback" not in r.output
