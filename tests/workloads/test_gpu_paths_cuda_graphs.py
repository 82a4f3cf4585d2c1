"""The CUDA-graph and compiled-decode paths of mlp and llm, run on the CPU as written,
through the stand-in graph API of helpers/cuda_graphs.py
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")


from gpuscout.workloads import llm, mlp  # noqa: E402
from gpuscout.workloads.base import WorkloadConfig  # noqa: E402
from gpuscout.workloads.instruments import Instruments  # noqa: E402
from helpers.cuda_graphs import CaptureError, Captures  # noqa: E402
from helpers.numerics import assert_greedy_tokens, fp32  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _offline_home(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GPUSCOUT_OFFLINE", "1")


def cfg(name: str, impl: str, **kw: Any) -> WorkloadConfig:
    return WorkloadConfig(name, "cpu", impl, **kw)


# -- the stand-in itself -------------------------------------------------------------------


def test_the_stand_in_runs_nothing_at_capture_and_replays_static_memory(
    captures: Captures,
) -> None:
    static_in, static_out, count = torch.zeros(3), torch.zeros(3), torch.zeros(())
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        static_out.copy_(static_in * 2 + 1)
        count.add_(1)
    assert static_out.tolist() == [0, 0, 0] and float(count) == 0  # nothing ran
    static_in.copy_(torch.tensor([1.0, 2.0, 3.0]))  # copied into: the replay sees it
    g.replay()
    assert static_out.tolist() == [3, 5, 7] and float(count) == 1
    static_in = torch.ones(3)  # rebound: the replay still reads the captured tensor
    g.replay()
    assert static_out.tolist() == [3, 5, 7] and float(count) == 2


@pytest.mark.parametrize(
    "body",
    [
        lambda t: float(t.sum()),  # .item(): a host read
        lambda t: t.add_(torch.tensor([1.0, 2.0])),  # host data copied in
        lambda t: t[t > 0].sum(),  # a mask gather: its size goes to the host
    ],
    ids=["item", "host-tensor", "mask"],
)
def test_the_stand_in_refuses_what_a_capture_refuses(captures: Captures, body: Any) -> None:
    t = torch.ones(2)
    with pytest.raises(CaptureError), torch.cuda.graph(torch.cuda.CUDAGraph()):
        body(t)


# -- mlp: whole training steps in a graph -------------------------------------------------


def _tuned_mlp(samples: int) -> Any:
    wl = mlp.build(cfg("mlp", "tuned", limit_samples=samples), CPU)
    assert wl.opt.defaults.get("fused"), "this torch has no fused CPU Adam to stand in"
    for group in wl.opt.param_groups:
        group["capturable"] = True  # what Tuned asks for on a GPU
    return wl


def test_mlp_capture_warms_up_and_leaves_weights_and_adam_as_they_were(
    captures: Captures,
) -> None:
    wl = _tuned_mlp(300)
    wl.train_epoch(mlp.epoch_orders(300, 1, 0)[0])  # Adam has states now
    before = [p.detach().clone() for p in wl.model.parameters()]
    state = {k: v.clone() for s in wl.opt.state.values() for k, v in s.items()}
    wl._capture((4, 1))
    assert [len(g.ops or ()) > 0 for g in captures.graphs] == [True, True]
    for p, b in zip(wl.model.parameters(), before, strict=True):
        assert torch.equal(p, b)
    after = {k: v for s in wl.opt.state.values() for k, v in s.items()}
    assert all(torch.equal(after[k], v) for k, v in state.items())
    assert float(wl.loss_sum) == 0


def test_mlp_graph_epochs_train_exactly_as_the_eager_steps(
    captures: Captures, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real ``_capture`` and ``train_epoch``: 4-step graphs, 1-step graphs and an
    eager short batch (11 full batches of 32 and one of 7), two epochs."""
    monkeypatch.setattr(mlp, "GRAPH_CHUNK", 4)
    n = 32 * 11 + 7
    orders = mlp.epoch_orders(n, 2, 0)
    eager = _tuned_mlp(n)
    graphed = _tuned_mlp(n)
    graphed.graphs = True
    want = [eager.train_epoch(o) for o in orders]
    got = [graphed.train_epoch(o) for o in orders]
    big, one = captures.graphs
    assert (big.replays, one.replays) == (2 * 2, 2 * 3)  # 8 steps in 4s, 3 in 1s, per epoch
    # A replay runs the aten ops the eager step ran, in the same order, on the same
    # shapes and values (the capture put back what it wrote): literally the same
    # computation, so exactly the same numbers on any kernels and thread count.
    assert got == want
    for a, b in zip(graphed.model.parameters(), eager.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert graphed.capture_s > 0


# -- llm: decoding in a graph, and compiled ------------------------------------------------

LLM = {"model": "llama-tiny", "seq_len": 10, "options": {"new_tokens": 7}}


def test_llm_hand_made_graph_decodes_the_reference_tokens(captures: Captures) -> None:
    ref, prompt = llm.build(cfg("llm", "reference", **fp32(LLM)), CPU, 3)
    tuned, _ = llm.build(cfg("llm", "tuned", **fp32(LLM)), CPU, 3)
    tuned.mode = "cuda_graph"  # what a GPU without a compiler runs
    want, _, _ = ref.generate(prompt)
    runs = [tuned.generate(prompt)[0] for _ in range(2)]  # captured once, then replayed
    # fp32 pinned (a CPU with AMX would decode in bf16). Growing cache and written-out
    # attention vs static cache and SDPA: the same tokens up to fp32 near-ties, against
    # float64 (numerics.assert_greedy_tokens); the two graph runs are one program: exact.
    assert_greedy_tokens(ref.model, prompt, want, *runs)
    assert torch.equal(runs[0], runs[1])
    (graph,) = captures.graphs
    assert graph.replays == 2 * 6


def test_llm_compiled_decode_traces_whole_and_decodes_the_reference_tokens() -> None:
    """fullgraph=True on the decode step with its static cache (aot_eager: the same
    Dynamo graph and functionalised cache writes, no C++ compiler)."""
    ref, prompt = llm.build(cfg("llm", "reference", **fp32(LLM)), CPU, 2)
    tuned, _ = llm.build(cfg("llm", "tuned", **fp32(LLM)), CPU, 2)
    tuned.compiled = torch.compile(
        tuned._decode, backend="aot_eager", fullgraph=True, dynamic=False
    )
    tuned.mode = "compile"
    want, _, _ = ref.generate(prompt)
    runs = [tuned.generate(prompt)[0] for _ in range(2)]
    # As above: up to fp32 near-ties against float64; the two compiled runs: exact.
    assert_greedy_tokens(ref.model, prompt, want, *runs)
    assert torch.equal(runs[0], runs[1])
    assert tuned.mode == "compile" and tuned.compile_error is None


def test_llm_run_falls_back_to_the_hand_graph_when_inductor_skips_graphs(
    captures: Captures, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_build = llm.build

    def build(*args: Any, **kwargs: Any) -> Any:
        gen, prompt = real_build(*args, **kwargs)
        gen.compiled, gen.mode = gen._decode, "compile"  # as a GPU with a compiler would
        return gen, prompt

    skips = iter(range(100))
    monkeypatch.setattr(llm, "build", build)
    monkeypatch.setattr(llm, "cudagraph_skips", lambda: next(skips))  # one more each time
    c = cfg("llm", "tuned", batch_size=1, **LLM)
    with Instruments(CPU) as inst:
        results = llm.run(c, inst)
    decode = next(r for r in results if r["variant"] == "decode-b1")["extra"]
    assert decode["decode_mode"] == "cuda_graph" and decode["compile"] is False
    assert "skipped CUDA graphs" in decode["compile_error"]
    assert len(captures.graphs) == 1 and captures.graphs[0].replays > 0
