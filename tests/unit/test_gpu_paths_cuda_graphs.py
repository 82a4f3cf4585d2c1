"""The CUDA-graph and compiled-decode paths of mlp and llm, run on the CPU as written.

A CUDA graph records the kernels a block launches, with the memory they read and write,
and runs none of them; ``replay()`` launches them again on the same memory. ``FakeGraph``
does the same one level up: while capturing, every aten op the block runs is recorded
(its arguments and the tensors it returned), and every tensor that existed before the
capture and was written inside it is put back afterwards, as if nothing ran. ``replay``
runs the recorded ops again on the same tensor objects, writing each op's fresh result
into the tensor it returned at capture, where later ops read it. So code that rebinds a
name instead of copying into a static tensor replays stale data here as on a GPU, and an
op a capture forbids (a host read such as ``.item()``, a tensor made from host data, a
boolean-mask gather whose size the host must learn) raises ``CaptureError``. The
side-stream warm-up becomes plain execution. What this cannot show (kernels, streams,
memory pools, the capturable optimizer's device checks) is the GPU run's to check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from numerics import assert_greedy_tokens, fp32  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_leaves  # noqa: E402

from gpuscout.workloads import llm, mlp  # noqa: E402
from gpuscout.workloads.base import WorkloadConfig  # noqa: E402
from gpuscout.workloads.instruments import Instruments  # noqa: E402

CPU = torch.device("cpu")
aten = torch.ops.aten
Op = tuple[Any, tuple[Any, ...], dict[str, Any], Any]


class CaptureError(RuntimeError):
    """What a CUDA stream capture refuses (or silently gets wrong)."""


def sync_reason(func: Any, args: tuple[Any, ...]) -> str | None:
    packet = func.overloadpacket
    if packet is aten._local_scalar_dense:
        return "a host read of a device value (.item(), float(t), bool(t))"
    if packet in (aten.lift_fresh, aten.lift_fresh_copy):
        return "a tensor made from host data (torch.tensor(...))"
    if packet in (aten.nonzero, aten.masked_select, aten.unique_consecutive):
        return "an op whose output size the host must read back"
    if packet in (aten.index, aten.index_put, aten.index_put_) and len(args) > 1:
        indices = args[1] if isinstance(args[1], list | tuple) else [args[1]]
        if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices):
            return "boolean-mask indexing (a nonzero the host reads back)"
    return None


def written(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """The tensors ``func`` writes in place: its schema's mutable arguments."""
    out: list[Any] = []
    for i, arg in enumerate(func._schema.arguments):
        if arg.alias_info is not None and arg.alias_info.is_write:
            value = args[i] if i < len(args) else kwargs.get(arg.name)
            out += [t for t in tree_leaves(value) if isinstance(t, torch.Tensor)]
    return out


def storage_key(t: Any) -> int:
    return int(t.untyped_storage().data_ptr())


class Recorder(TorchDispatchMode):  # type: ignore[no-untyped-call]
    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.ops: list[Op] = []
        self.made: set[int] = set()  # storages allocated inside the capture
        self.saved: dict[int, tuple[Any, Any]] = {}  # storage -> (base tensor, its value)

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        why = sync_reason(func, args)
        if why is not None:
            raise CaptureError(f"{func} inside a CUDA graph capture: {why}")
        for t in written(func, args, kwargs):
            key = storage_key(t)
            if key not in self.made and key not in self.saved:
                base = t if t._base is None else t._base
                self.saved[key] = (base, base.detach().clone())
        out = func(*args, **kwargs)
        self.made |= {storage_key(t) for t in tree_leaves(out) if isinstance(t, torch.Tensor)}
        self.made -= set(self.saved)
        self.ops.append((func, args, kwargs, out))
        return out


def same_memory(a: Any, b: Any) -> bool:
    return (
        isinstance(b, torch.Tensor)
        and storage_key(a) == storage_key(b)
        and a.storage_offset() == b.storage_offset()
        and a.stride() == b.stride()
    )


class FakeGraph:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ops: list[Op] | None = None
        self.replays = 0

    def replay(self) -> None:
        if self.ops is None:
            raise CaptureError("replay() of a graph that was never captured")
        with torch.no_grad():
            for func, args, kwargs, out in self.ops:
                fresh = func(*args, **kwargs)
                for old, new in zip(tree_leaves(out), tree_leaves(fresh), strict=True):
                    if isinstance(old, torch.Tensor) and not same_memory(old, new):
                        old.copy_(new)
        self.replays += 1


class FakeStream:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def wait_stream(self, other: Any) -> None:
        pass


class Captures:
    def __init__(self) -> None:
        self.graphs: list[FakeGraph] = []

    @contextlib.contextmanager
    def graph(
        self, g: FakeGraph, pool: Any = None, stream: Any = None, **kw: Any
    ) -> Iterator[None]:
        if g.ops is not None:
            raise CaptureError("a CUDAGraph is captured once")
        rec = Recorder()
        with rec:
            yield
        with torch.no_grad():  # the capture ran nothing: put back what it wrote
            for base, value in rec.saved.values():
                base.copy_(value)
        g.ops = rec.ops
        self.graphs.append(g)


@pytest.fixture
def captures(monkeypatch: pytest.MonkeyPatch) -> Captures:
    """torch.cuda's graph and stream API replaced by the CPU stand-ins above."""
    cap = Captures()
    monkeypatch.setattr(torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a, **k: FakeStream())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", cap.graph)
    return cap


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
