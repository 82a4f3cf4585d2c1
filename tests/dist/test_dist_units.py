"""The arithmetic and the decisions of `bench dist`, without starting a process:
nccl-tests' bandwidth formulas, sizes, scaling efficiency, Slurm's environment and node
lists, the torchrun command line, and naming the failed rank from what ranks left."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from gpuscout.dist import collectives, diagnose, job, scaling
from gpuscout.dist.diagnose import RankState
from gpuscout.dist.job import check_names
from gpuscout.dist.rank import Fault, parse_fault, write_json
from gpuscout.dist.slurm import (
    detect_slurm,
    expand_nodelist,
    first_host,
    job_port,
    tasks_per_node,
)
from gpuscout.dist.torchrun import (
    LaunchSpec,
    parse_endpoint,
    plan_launch,
    rank_environment,
    torchrun_command,
)
from gpuscout.errors import UnknownNameError, UsageError

# -- nccl-tests' formulas ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "n", "factor"),
    [
        ("all_reduce", 2, 1.0),
        ("all_reduce", 8, 1.75),
        ("all_reduce", 1, 0.0),
        ("all_gather", 8, 0.875),
        ("all_gather", 2, 0.5),
        ("broadcast", 8, 1.0),
        ("broadcast", 1, 1.0),
    ],
)
def test_bus_factor_is_nccl_tests_definition(op: str, n: int, factor: float) -> None:
    assert collectives.bus_factor(op, n) == pytest.approx(factor)


def test_bandwidths_in_gb_of_1e9_bytes() -> None:
    # 1 GiB all-reduced in 10 ms on 8 ranks: algbw 107.37 GB/s, busbw x 1.75
    size = 2**30
    assert collectives.algbw_gbs(size, 0.01) == pytest.approx(107.374182, rel=1e-6)
    assert collectives.busbw_gbs("all_reduce", size, 0.01, 8) == pytest.approx(
        107.374182 * 1.75, rel=1e-6
    )
    with pytest.raises(ValueError):
        collectives.bus_factor("all_to_all", 4)
    with pytest.raises(ValueError):
        collectives.algbw_gbs(size, 0.0)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1K", 1024), ("64M", 64 * 2**20), ("1G", 2**30), ("1GiB", 2**30), ("4096", 4096)],
)
def test_parse_size(text: str, size: int) -> None:
    assert collectives.parse_size(text) == size


@pytest.mark.parametrize("text", ["12Q", "", "1.5M", "512"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        collectives.parse_size(text)


def test_default_sizes() -> None:
    gpu = collectives.default_sizes(gpu=True, quick=False)
    assert gpu[0] == 1024 and gpu[-1] == 2**30 and len(gpu) == 21  # 1 KiB..1 GiB doubling
    cpu = collectives.default_sizes(gpu=False, quick=False)
    assert cpu[-1] == 64 * 2**20 and all(b == 4 * a for a, b in itertools.pairwise(cpu))
    assert collectives.default_sizes(gpu=False, quick=True)[-1] == 4 * 2**20
    assert collectives.default_sizes(gpu=True, quick=False, max_size=16 * 1024) == [
        1024,
        2048,
        4096,
        8192,
        16384,
    ]
    assert collectives.format_size(2**30) == "1 GiB" and collectives.format_size(4096) == "4 KiB"


# -- scaling arithmetic -----------------------------------------------------------------


def test_process_counts_are_powers_of_two_then_the_world() -> None:
    assert scaling.process_counts(1) == [1]
    assert scaling.process_counts(2) == [1, 2]
    assert scaling.process_counts(8) == [1, 2, 4, 8]
    assert scaling.process_counts(6) == [1, 2, 4, 6]


def test_efficiency_and_comm_share() -> None:
    # Lambda's 8 x H100 ResNet-50: 7.9x one GPU is 98.75% efficient.
    assert scaling.scaling_efficiency(7.9 * 2790, 2790, 8) == pytest.approx(0.9875)
    assert scaling.comm_share(0.100, 0.080) == pytest.approx(0.2)
    assert scaling.comm_share(0.100, 0.105) == 0.0  # no-sync not faster: nothing to charge
    with pytest.raises(ValueError):
        scaling.scaling_efficiency(1.0, 0.0, 2)


def test_scaling_workload_names() -> None:
    def workloads(names: list[str]) -> tuple[str, ...]:
        return check_names(names, scaling.WORKLOADS, "scaling workload")

    assert workloads(["CNN", "llm", "cnn"]) == ("cnn", "llm")
    with pytest.raises(UnknownNameError) as err:
        workloads(["encodr"])
    assert "encoder" in err.value.suggestions
    ops = check_names("All-Reduce, broadcast,", collectives.OPS, "collective")
    assert ops == ("all_reduce", "broadcast")
    with pytest.raises(UsageError, match="no part given"):
        check_names(" , ", ("collectives", "scaling"), "part")


# -- Slurm --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "hosts"),
    [
        ("node01", ["node01"]),
        ("node[01-04]", ["node01", "node02", "node03", "node04"]),
        ("gpu[8-11]", ["gpu8", "gpu9", "gpu10", "gpu11"]),
        ("n[01-02,07],login1", ["n01", "n02", "n07", "login1"]),
        ("r[1-2]-n[1-2]", ["r1-n1", "r1-n2", "r2-n1", "r2-n2"]),
        ("a[009-011]", ["a009", "a010", "a011"]),
    ],
)
def test_expand_nodelist(spec: str, hosts: list[str]) -> None:
    assert expand_nodelist(spec) == hosts
    assert first_host(spec) == hosts[0]


@pytest.mark.parametrize("spec", ["node[01-04", "node]", "n[a-b]", "n[4-1]", ""])
def test_malformed_nodelist(spec: str) -> None:
    with pytest.raises(UsageError):
        expand_nodelist(spec)


def test_tasks_per_node() -> None:
    assert tasks_per_node("2(x3),1") == [2, 2, 2, 1]
    assert tasks_per_node("4") == [4]


SRUN = {
    "SLURM_JOB_ID": "123456",
    "SLURM_STEP_ID": "0",
    "SLURM_PROCID": "5",
    "SLURM_NTASKS": "8",
    "SLURM_LOCALID": "1",
    "SLURM_NODEID": "1",
    "SLURM_NNODES": "2",
    "SLURM_STEP_NODELIST": "gpu-[07-08]",
    "SLURM_STEP_TASKS_PER_NODE": "4(x2)",
}


def test_detect_slurm_inside_srun() -> None:
    task = detect_slurm(SRUN)
    assert task is not None
    assert (task.rank, task.world_size, task.local_rank, task.local_world_size) == (5, 8, 1, 4)
    assert task.master_addr == "gpu-07" and task.nnodes == 2
    assert task.master_port == job_port("123456") and 20000 <= task.master_port < 32000


def test_batch_script_and_plain_shell_are_not_srun() -> None:
    assert detect_slurm({}) is None
    batch = {k: v for k, v in SRUN.items() if k != "SLURM_STEP_ID"}
    assert detect_slurm(batch) is None
    assert detect_slurm(batch | {"SLURM_STEP_ID": "batch"}) is None


def test_slurm_tasks_become_ranks_without_torchrun() -> None:
    spec = plan_launch(environ=SRUN)
    assert spec.slurm_tasks and spec.world_size == 8 and spec.launcher == "slurm"
    env = rank_environment(spec, {"PATH": "/bin"})
    assert env["RANK"] == "5" and env["WORLD_SIZE"] == "8" and env["LOCAL_RANK"] == "1"
    assert env["MASTER_ADDR"] == "gpu-07" and env["PATH"] == "/bin"
    with pytest.raises(UsageError, match="each task is one rank"):
        plan_launch(nproc_per_node=4, environ=SRUN)


def test_one_slurm_task_per_node_runs_torchrun_with_the_first_host() -> None:
    env = SRUN | {"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "0"}
    env["SLURM_STEP_TASKS_PER_NODE"] = "1(x2)"
    spec = plan_launch(nproc_per_node=8, environ=env)
    assert not spec.slurm_tasks and spec.nnodes == 2 and spec.world_size == 16
    assert spec.rdzv_endpoint == f"gpu-07:{job_port('123456')}"


ONE_TASK = {
    "SLURM_JOB_ID": "77",
    "SLURM_STEP_ID": "0",
    "SLURM_PROCID": "0",
    "SLURM_NTASKS": "1",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
    "SLURM_NNODES": "1",
    "SLURM_STEP_NODELIST": "gpu-07",
    "SLURM_STEP_TASKS_PER_NODE": "1",
}
PER_NODE = SRUN | {"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "0"}
PER_NODE["SLURM_STEP_TASKS_PER_NODE"] = "1(x2)"


@pytest.mark.parametrize(
    ("environ", "kwargs", "fields"),
    [
        # (ranks per node, nodes, endpoint, rendezvous id, Slurm tasks are the ranks)
        ({}, {}, (5, 1, None, "gpuscout", False)),
        ({}, {"nproc_per_node": 2}, (2, 1, None, "gpuscout", False)),
        ({}, {"nnodes": 3, "rdzv_endpoint": "n1:29400"}, (5, 3, "n1:29400", "gpuscout", False)),
        (ONE_TASK, {}, (5, 1, None, "gpuscout", False)),  # one task: torchrun on this node
        (SRUN, {}, (4, 2, None, "slurm-123456", True)),
        (SRUN, {"rdzv_endpoint": "n1:29400"}, (4, 2, "n1:29400", "slurm-123456", True)),
        (PER_NODE, {}, (1, 2, None, "slurm-123456", True)),
        (
            PER_NODE,
            {"nproc_per_node": 3},
            (3, 2, f"gpu-07:{job_port('123456')}", "slurm-123456", False),
        ),
        (PER_NODE, {"nnodes": 2, "rdzv_endpoint": "n1:1"}, (5, 2, "n1:1", "slurm-123456", False)),
    ],
)
def test_plan_launch_chooses_the_launcher(
    environ: dict[str, str], kwargs: dict[str, Any], fields: tuple[object, ...]
) -> None:
    spec = plan_launch(**kwargs, timeout_s=90, default_nproc=5, environ=environ)
    got = (spec.nproc_per_node, spec.nnodes, spec.rdzv_endpoint, spec.rdzv_id, spec.slurm_tasks)
    assert got == fields
    assert spec.timeout_s == 90 and spec.slurm == detect_slurm(environ)


@pytest.mark.parametrize(
    ("environ", "kwargs", "message"),
    [
        ({}, {"nproc_per_node": -1}, "--nproc-per-node must be at least 1, not -1"),
        ({}, {"nnodes": 0}, "--nnodes must be at least 1, not 0"),
        ({}, {"timeout_s": -2.5}, "--timeout must be more than 0 seconds, not -2.5"),
        ({}, {"rdzv_endpoint": ":1"}, "bad rendezvous endpoint ':1'"),
        ({}, {"nnodes": 2}, "--nnodes 2 needs --rdzv-endpoint HOST:PORT"),
        (SRUN, {"nnodes": 2}, "inside a Slurm step with 8 tasks, each task is one rank"),
        (PER_NODE, {"nnodes": 3}, "--nnodes 3 but the Slurm step spans 2 nodes"),
    ],
)
def test_plan_launch_says_what_is_wrong(
    environ: dict[str, str], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError) as exc:
        plan_launch(**kwargs, environ=environ)
    assert exc.value.message == message


# -- torchrun command and options ----------------------------------------------------------


def test_single_node_command_is_standalone_via_python_m() -> None:
    spec = plan_launch(3, environ={})
    cmd = torchrun_command(spec, Path("/j/request.json"), Path("/j"))
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--standalone" in cmd and "--rdzv-endpoint" not in cmd
    assert cmd[cmd.index("--nproc-per-node") + 1] == "3"
    assert cmd[cmd.index("--max-restarts") + 1] == "0"
    assert cmd[-4:] == ["-m", "gpuscout.dist.rank_main", "/j/request.json", "/j"]


def test_multi_node_command_uses_c10d_rendezvous() -> None:
    spec = plan_launch(4, 2, "node01:29400", timeout_s=90, environ={})
    cmd = torchrun_command(spec, Path("r.json"), Path("o"))
    assert "--standalone" not in cmd
    assert cmd[cmd.index("--nnodes") + 1] == "2"
    assert cmd[cmd.index("--rdzv-backend") + 1] == "c10d"
    assert cmd[cmd.index("--rdzv-endpoint") + 1] == "node01:29400"
    assert cmd[cmd.index("--rdzv-conf") + 1] == "join_timeout=90"
    assert spec.world_size == 8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"nproc_per_node": 0}, "at least 1"),
        ({"nnodes": 2}, "needs --rdzv-endpoint"),
        ({"nnodes": 2, "rdzv_endpoint": "node01"}, "bad rendezvous endpoint"),
        ({"rdzv_endpoint": "node01:99999"}, "bad rendezvous endpoint"),
        ({"timeout_s": 0}, "--timeout"),
    ],
)
def test_plan_launch_rejects(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        plan_launch(environ={}, **kwargs)  # type: ignore[arg-type]


def test_parse_endpoint() -> None:
    assert parse_endpoint("10.0.0.1:29400") == ("10.0.0.1", 29400)
    assert parse_endpoint("[::1]:29400") == ("::1", 29400)


def test_rank_environment_is_only_for_slurm_tasks() -> None:
    with pytest.raises(ValueError):
        rank_environment(LaunchSpec(), {})


def test_parse_fault() -> None:
    assert parse_fault(None) is None
    assert parse_fault("exit:1") == Fault("exit", 1, 2)
    assert parse_fault("hang:0@7") == Fault("hang", 0, 7)
    for bad in ("exit", "explode:1", "exit:x"):
        with pytest.raises(UsageError):
            parse_fault(bad)


# -- checking `bench dist`'s options ---------------------------------------------------


def _torch_sees(monkeypatch: pytest.MonkeyPatch, cuda: bool, gpus: int, nccl: bool) -> None:
    """What torch would answer about CUDA, without asking it."""
    monkeypatch.setattr(job, "_cuda", lambda: (cuda, gpus, nccl))


@pytest.mark.parametrize(
    ("sees", "kwargs", "message"),
    [
        ((True, 2, True), {"backend": "mpi"}, "unknown backend 'mpi'"),
        ((True, 2, True), {"device": "tpu"}, "unknown device 'tpu'"),
        (
            (False, 0, True),
            {"backend": "nccl", "device": "cpu"},
            "--backend nccl needs a CUDA GPU, and PyTorch sees none",
        ),
        ((True, 2, False), {"backend": "nccl"}, "this PyTorch build has no NCCL"),
        ((True, 2, True), {"device": "cpu", "backend": "nccl"}, "NCCL moves only CUDA tensors"),
        ((False, 0, False), {"device": "cuda"}, "--device cuda but PyTorch sees no CUDA GPU"),
        (
            (True, 1, True),
            {"nproc_per_node": 2},
            "2 ranks per node but 1 GPU(s): NCCL will not put two ranks on one GPU",
        ),
        ((False, 0, False), {"max_size": 512}, "--max-size 512 is below the smallest size, 1 KiB"),
        ((False, 0, False), {"max_size": 2**31}, "--max-size is at most 1G"),
        ((False, 0, False), {"max_size": "2G"}, "--max-size is at most 1G"),
    ],
)
def test_plan_rejects_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    sees: tuple[bool, int, bool],
    kwargs: dict[str, Any],
    message: str,
) -> None:
    _torch_sees(monkeypatch, *sees)
    with pytest.raises(UsageError) as exc:
        job.plan(environ={}, **kwargs)
    assert exc.value.message == message


@pytest.mark.parametrize(
    ("sees", "kwargs", "chosen"),
    [
        # (backend, device, ranks per node, timeout, collective timeout, sizes)
        ((True, 4, True), {}, ("nccl", "cuda", 4, 1800.0, 300.0, 21)),  # 1 KiB .. 1 GiB
        ((True, 4, False), {"quick": True}, ("gloo", "cpu", 2, 600.0, 300.0, 7)),  # .. 4 MiB
        ((True, 4, True), {"backend": "gloo"}, ("gloo", "cpu", 2, 1800.0, 300.0, 9)),  # 64 MiB
        (
            (True, 4, True),
            {"backend": "gloo", "device": "cuda"},
            ("gloo", "cuda", 4, 1800.0, 300.0, 21),
        ),
        ((False, 0, False), {"timeout_s": 60, "max_size": "4K"}, ("gloo", "cpu", 2, 60.0, 60.0, 2)),
        (
            (True, 1, True),
            {"nproc_per_node": 1, "max_size": 1024},
            ("nccl", "cuda", 1, 1800.0, 300.0, 1),
        ),
    ],
)
def test_plan_picks_backend_device_and_sizes(
    monkeypatch: pytest.MonkeyPatch,
    sees: tuple[bool, int, bool],
    kwargs: dict[str, Any],
    chosen: tuple[str, str, int, float, float, int],
) -> None:
    _torch_sees(monkeypatch, *sees)
    p = job.plan(environ={}, **kwargs)
    assert (
        p.backend,
        p.device,
        p.spec.nproc_per_node,
        p.spec.timeout_s,
        p.pg_timeout_s,
        len(p.sizes),
    ) == chosen
    assert p.sizes[0] == 1024


# -- naming the failed rank -----------------------------------------------------------------

# torchrun 2.13's summary after rank 1 called os._exit(3) (captured on this machine).
TORCHRUN_EXIT = """
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
gpuscout.dist.rank_main FAILED
------------------------------------------------------------
Failures:
[1]:
  time      : 2026-11-23_04:42:04
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 27097)  (SIGTERM)
  error_file: <N/A>
  traceback : Signal 15 (SIGTERM) received by PID 27097
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-11-23_04:42:04
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : 3 (pid: 27098)
  error_file: <N/A>
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
============================================================
"""


def test_parse_torchrun_log() -> None:
    codes, root = diagnose.parse_torchrun_log(TORCHRUN_EXIT)
    assert codes == {0: -15, 1: 3} and root == 1
    assert diagnose.parse_torchrun_log("all fine") == ({}, None)


def test_a_silent_death_is_named_by_its_exit_code_not_the_survivor() -> None:
    states = {
        0: RankState(
            0,
            step=2,
            phase="collectives: all_reduce 1 KiB",
            error_type="RuntimeError",
            error_message="Connection reset by peer",
            error_time=10.0,
        ),
        1: RankState(1, step=1, phase="process group ready"),
    }
    codes, root = diagnose.parse_torchrun_log(TORCHRUN_EXIT)
    d = diagnose.diagnose(states, exitcodes=codes, root_rank=root, returncode=1)
    assert d.culprits == (1,)
    assert d.message.startswith("rank 1 exited with code 3")
    killed = diagnose.diagnose(states, exitcodes={1: -9}, returncode=1)
    assert "rank 1 was killed by SIGKILL" in killed.message


def test_an_own_error_beats_the_lost_peer_errors_it_caused() -> None:
    states = {
        0: RankState(
            0,
            step=3,
            phase="a",
            error_type="RuntimeError",
            error_message="Connection closed by peer",
            error_time=5.0,
        ),
        1: RankState(
            1, step=3, phase="b", error_type="ValueError", error_message="boom", error_time=6.0
        ),
        2: RankState(2, step=4, phase="c", finished=True),
    }
    d = diagnose.diagnose(states, returncode=1)
    assert d.culprits == (1,) and d.message == "rank 1 failed during 'b': ValueError: boom"


def test_a_hang_names_the_rank_that_fell_behind() -> None:
    states = {
        0: RankState(0, step=5, phase="all_reduce 16 KiB"),
        1: RankState(1, step=4, phase="all_reduce 4 KiB"),
        2: RankState(2, step=5, phase="all_reduce 16 KiB"),
    }
    d = diagnose.diagnose(states, timed_out=True, timeout_s=30, returncode=-15)
    assert d.culprits == (1,)
    assert d.message.startswith("rank 1 hung: stopped making progress after 'all_reduce 4 KiB'")
    assert "30 s timeout" in d.message
    # the same through a collective timeout on the survivors, without the launcher's timeout
    states[0] = RankState(
        0,
        step=5,
        phase="x",
        error_type="RuntimeError",
        error_message="Timed out waiting 8000ms for recv",
        error_time=1.0,
    )
    assert diagnose.diagnose(states, returncode=1).culprits == (1,)


# On NCCL the rank waiting for a hung peer raises nothing: after the process-group
# timeout the watchdog logs this line and aborts it (SIGABRT); torchrun then stops the
# hung rank with SIGTERM.
NCCL_WATCHDOG = """
[rank0]:[E1123 04:47:04.518 ProcessGroupNCCL.cpp:632] [Rank 0] Watchdog caught collective \
operation timeout: WorkNCCL(SeqNum=3, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, \
Timeout(ms)=300000) ran for 300081 milliseconds before timing out.
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
gpuscout.dist.rank_main FAILED
------------------------------------------------------------
Failures:
[1]:
  rank      : 1 (local_rank: 1)
  exitcode  : -15 (pid: 31002)  (SIGTERM)
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  rank      : 0 (local_rank: 0)
  exitcode  : -6 (pid: 31001)  (SIGABRT)
============================================================
"""


def test_an_nccl_watchdog_abort_names_the_rank_it_waited_for() -> None:
    codes, root = diagnose.parse_torchrun_log(NCCL_WATCHDOG)
    assert codes == {0: -6, 1: -15} and root == 0
    assert diagnose.collective_timed_out(NCCL_WATCHDOG)
    assert not diagnose.collective_timed_out(TORCHRUN_EXIT)
    states = {
        0: RankState(0, step=2, phase="collectives: all_reduce 1 KiB"),
        1: RankState(1, step=1, phase="process group ready"),
    }
    d = diagnose.diagnose(
        states, exitcodes=codes, root_rank=root, returncode=1, collective_timeout=True
    )
    assert d.culprits == (1,)
    assert d.message.startswith("rank 1 hung: stopped making progress after 'process group")
    assert "rank 0 waited at 'collectives: all_reduce 1 KiB'" in d.message
    # both ranks inside the same collective (a fabric fault): neither is behind
    stuck = {r: RankState(r, step=2, phase="collectives: all_reduce 1 KiB") for r in (0, 1)}
    d = diagnose.diagnose(stuck, exitcodes={0: -6, 1: -6}, returncode=1, collective_timeout=True)
    assert d.culprits == (0, 1) and "a collective timed out (NCCL's watchdog)" in d.message


def test_all_ranks_stuck_together_and_nobody_started() -> None:
    stuck = {r: RankState(r, step=4, phase="all_gather 1 GiB") for r in (0, 1)}
    d = diagnose.diagnose(stuck, timed_out=True, timeout_s=10)
    assert d.culprits == (0, 1) and "ranks 0, 1 made no progress" in d.message
    never = {r: RankState(r) for r in (0, 1)}
    d = diagnose.diagnose(never, timed_out=True, timeout_s=10)
    assert "no rank started" in d.message
    assert "exited with code 1" in diagnose.diagnose(never, returncode=1).message


def test_read_states_from_rank_files(tmp_path: Path) -> None:
    write_json(tmp_path / "rank-0.progress.json", {"step": 3, "phase": "p", "pid": 11})
    write_json(tmp_path / "rank-0.json", {"rank": 0, "value": {}})
    write_json(tmp_path / "rank-1.progress.json", {"step": 2, "phase": "q", "pid": 12})
    (tmp_path / "rank-1.error.json").write_text(
        json.dumps({"type": "ValueError", "message": "m", "time": 1.5, "phase": "r"})
    )
    states = diagnose.read_states(tmp_path, [0, 1, 2])
    assert states[0].finished and states[0].step == 3
    assert states[1].error_type == "ValueError" and states[1].phase == "r"  # the error's phase
    assert states[2].step == -1 and not states[2].finished


def _lost(
    rank: int, message: str, at: float, step: int, phase: str, host: str | None = None
) -> RankState:
    """A rank that raised a RuntimeError with ``message`` at time ``at``."""
    return RankState(
        rank, step, phase, host, error_type="RuntimeError", error_message=message, error_time=at
    )


# Each rule of diagnose(), with the whole line it writes (worked out from the rules).
VERDICTS = [
    pytest.param(
        {
            1: RankState(1, 3, "b", "n1", error_type="ValueError", error_message="x", error_time=6),
            2: RankState(2, 3, "c", "n2", error_type="KeyError", error_message="y", error_time=6),
        },
        {"returncode": 1},
        (1,),
        "rank 1 failed during 'b' on n1: ValueError: x",
        id="own-error-earliest-then-lowest-rank",
    ),
    pytest.param(
        {0: RankState(0, 2, "warm-up"), 1: RankState(1)},
        {"timed_out": True, "timeout_s": 30},
        (1,),
        "rank 1 hung: never started while rank 0 waited at 'warm-up'; "
        "the job was stopped after the 30 s timeout",
        id="hang-never-started",
    ),
    pytest.param(
        {0: RankState(0, 5, "a"), 1: RankState(1, 4, "b", "n1")},
        {"timed_out": True},
        (1,),
        "rank 1 hung: stopped making progress after 'b' on n1 while rank 0 waited at 'a'; "
        "the other ranks timed out waiting for it",
        id="hang-without-a-timeout-figure",
    ),
    pytest.param(
        {0: RankState(0, 4, "x"), 1: RankState(1, 4, "w"), 2: RankState(2, 9, finished=True)},
        {"timed_out": True, "timeout_s": 10},
        (0, 1),
        "ranks 0, 1 made no progress past 'w' / 'x'; the job was stopped after the 10 s timeout",
        id="all-stuck-together",
    ),
    pytest.param(
        {
            0: _lost(0, "Timed out waiting", 2.0, step=2, phase="p"),
            1: _lost(1, "Timeout", 1.0, step=2, phase="p"),
        },
        {"returncode": 1},
        (1,),
        "rank 1 lost its peers during 'p': RuntimeError: Timeout "
        "(the cause is on another rank; see that node's output)",
        id="timeouts-alone-are-lost-peers",
    ),
    pytest.param(
        {
            0: _lost(0, "Connection reset by peer", 7.0, step=3, phase="ar", host="n0"),
            1: _lost(1, "Broken pipe", 6.5, step=3, phase="ar", host="n1"),
        },
        {"returncode": 1},
        (1,),
        "rank 1 lost its peers during 'ar' on n1: RuntimeError: Broken pipe "
        "(the cause is on another rank; see that node's output)",
        id="only-lost-peers",
    ),
    pytest.param(
        {r: RankState(r, 3, "q") for r in (0, 1, 2)},
        {"exitcodes": {0: -15, 1: -15, 2: -15}, "root_rank": 2},
        (2,),
        "rank 2 was killed by SIGTERM after 'q'",
        id="silent-root-rank",
    ),
    pytest.param(
        {r: RankState(r, 3, "q") for r in (0, 1)},
        {"exitcodes": {0: -15, 1: -15}},
        (0, 1),
        "ranks 0, 1 was killed by SIGTERM after 'q'",
        id="silent-all-terminated",
    ),
    pytest.param(
        {0: RankState(0, 1, "p", exitcode=9), 1: RankState(1, 1, "p")},
        {"exitcodes": {0: -15}},
        (0,),
        "rank 0 exited with code 9 without a result after 'p'",
        id="silent-own-code-kept",
    ),
    pytest.param(
        {0: RankState(0, 0)},
        {},
        (0,),
        "rank 0 died without a result or an error before it started",
        id="silent-no-code",
    ),
    pytest.param(
        {r: RankState(r) for r in (0, 1)},
        {"timed_out": True, "timeout_s": 10},
        (0, 1),
        "no rank started within the 10 s timeout "
        "(a rendezvous that never completed: are all nodes running the same command?)",
        id="nobody-started-in-time",
    ),
    pytest.param(
        {r: RankState(r) for r in (0, 1)},
        {"returncode": 1},
        (0, 1),
        "the launcher exited with code 1 before ranks 0, 1 started",
        id="launcher-exit",
    ),
    pytest.param(
        {},
        {"returncode": 3},
        (),
        "the launcher exited with code 3 before any rank reported",
        id="launcher-exit-no-rank",
    ),
]


@pytest.mark.parametrize(("states", "kwargs", "culprits", "message"), VERDICTS)
def test_each_rule_writes_its_whole_line(
    states: dict[int, RankState],
    kwargs: dict[str, Any],
    culprits: tuple[int, ...],
    message: str,
) -> None:
    d = diagnose.diagnose(states, **kwargs)
    assert (d.culprits, d.message) == (culprits, message)
