"""The tuned llm's attention as a GPU would run it, checked on the CPU: the compiled
decode step is one graph with no breaks whose only in-place writes are to static
buffers (what inductor's CUDA graphs need with mode="reduce-overhead"), and every SDPA
call has the form PyTorch's fused kernels accept (sdp_utils's rules, restated below),
with the reference's tokens as the result."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402

from gpuscout.workloads import llama, llm  # noqa: E402
from gpuscout.workloads.base import WorkloadConfig  # noqa: E402
from helpers import numerics  # noqa: E402

CPU = torch.device("cpu")
# fp32 pinned: a CPU with AMX would run the tuned program in bf16.
LLM: dict[str, Any] = {
    "model": "llama-tiny",
    "seq_len": 10,
    "options": {"new_tokens": 7, "dtype": "fp32"},
}


def tuned(batch: int) -> tuple[Any, Any]:
    """llama-tiny (4 query heads over 2 KV heads), its cache holding a prefilled prompt."""
    gen, prompt = llm.build(WorkloadConfig("llm", "cpu", "tuned", **LLM), CPU, batch)
    with torch.no_grad():
        first = gen.model(prompt, torch.arange(prompt.shape[1])).argmax(-1)
    gen.tok.copy_(first)
    gen.pos.fill_(prompt.shape[1])
    return gen, prompt


@pytest.mark.parametrize("batch", [1, 3])
def test_the_decode_step_is_one_graph_without_breaks(batch: int) -> None:
    gen, _ = tuned(batch)
    with torch.no_grad():
        explained = torch._dynamo.explain(gen._decode)(gen.tok, gen.pos)
    assert explained.break_reasons == []
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)


def test_the_decode_graph_writes_in_place_only_to_static_buffers() -> None:
    """Inductor runs a graph that mutates an input as a CUDA graph only when that input
    is static (a parameter or module buffer: its address never changes); otherwise it
    logs "skipping cudagraphs due to mutated inputs" and launches every kernel."""
    graphs: list[Any] = []

    def backend(gm: Any, example_inputs: Any) -> Any:
        graphs.append(gm)
        return gm.forward

    gen, _ = tuned(2)
    step = torch.compile(gen._decode, backend=backend, fullgraph=True, dynamic=False)
    with torch.no_grad():
        step(gen.tok, gen.pos)
    (gm,) = graphs
    written = {}
    for node in gm.graph.nodes:
        if node.op in ("call_method", "call_function") and str(node.target).endswith("_"):
            target = node.args[0]
            assert target.op == "placeholder", (node.target, target.name)
            static = target.meta.get("tensor_dict", {}).get("_dynamo_static_input_type")
            written[target.name] = static
    # the static cache: a key and a value buffer per layer, and nothing else written
    assert len(written) == 2 * len(gen.model.layers), written
    assert all(name.endswith(("_k_", "_v_")) for name in written), written
    assert all(static is not None for static in written.values()), written


class Calls(TorchFunctionMode):
    """SDPA calls (arguments kept) and whether any K/V was repeated."""

    def __init__(self) -> None:
        super().__init__()
        self.sdpa: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.repeated = 0

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            self.sdpa.append((args, kwargs))
        if getattr(func, "__name__", "") == "repeat_interleave":
            self.repeated += 1
        return func(*args, **kwargs)


@contextlib.contextmanager
def calls() -> Iterator[Calls]:
    with Calls() as mode:
        yield mode


def test_prefill_is_causal_without_a_mask_tensor() -> None:
    """Flash attention takes no mask and supports grouped-query attention: prefill
    must ask for causality by the flag, and pass the KV heads as they are."""
    gen, prompt = tuned(2)
    with calls() as seen, torch.no_grad():
        gen.model(prompt, torch.arange(prompt.shape[1]))
    assert seen.repeated == 0
    assert len(seen.sdpa) == len(gen.model.layers)
    for args, kwargs in seen.sdpa:
        q, k, _ = args
        assert kwargs.get("attn_mask") is None and kwargs["is_causal"] is True
        assert kwargs["enable_gqa"] is True and k.shape[1] < q.shape[1]
        assert q.shape[2] == k.shape[2] == prompt.shape[1]  # flash: causal needs square


def test_decode_attention_has_the_memory_efficient_kernels_form() -> None:
    """The memory-efficient kernel takes a mask but not differing head counts
    (check_batch_size_and_num_heads_dense<false>), and wants a last-dim stride of 1.
    Decode must give it equal head counts, read the cache as it is (no repeat), and
    mask rather than slice (a slice's shape would change every token)."""
    gen, _ = tuned(3)
    with calls() as seen, torch.no_grad():
        gen._decode(gen.tok, gen.pos)
    assert seen.repeated == 0
    max_len = gen.model.layers[0].attn.kv.k.shape[2]
    for args, kwargs in seen.sdpa:
        q, k, v = args
        mask = kwargs["attn_mask"]
        assert not kwargs.get("enable_gqa", False) and not kwargs.get("is_causal", False)
        assert q.shape[:2] == k.shape[:2] == v.shape[:2] == (3, gen.model.s.kv_heads)
        assert q.shape[2] == gen.model.s.heads // gen.model.s.kv_heads  # query heads as rows
        assert k.shape[2] == max_len  # the whole static cache: one shape every token
        assert mask.dtype == torch.bool and mask.shape[-1] == max_len
        assert all(t.stride(-1) == 1 for t in (q, k, v, mask))


# No grouping, one shared KV head, and 8 query heads over 2 KV heads: groups != KV heads,
# so a fold that pairs query heads with the wrong KV head gives other tokens.
@pytest.mark.parametrize(("heads", "kv_heads"), [(4, 4), (4, 1), (8, 2)])
@pytest.mark.parametrize("batch", [1, 3])
def test_tuned_decoding_gives_the_reference_tokens_for_any_grouping(
    heads: int, kv_heads: int, batch: int
) -> None:
    shape = llama.LlamaShape(2, 64, heads, kv_heads, 176, 256)
    prompt_len, new = 10, 7

    def model(sdpa: bool) -> Any:
        torch.manual_seed(0)
        return llama.make_llama(shape, CPU, torch.float32, sdpa=sdpa, max_len=prompt_len + new)

    prompt = torch.randint(0, shape.vocab, (batch, prompt_len), generator=torch.Generator())
    # Logits first (fp32 on both sides: equal to rounding), then whole greedy sequences.
    ref_model, tuned_model = model(False), model(True)
    ref_model.set_caches(llama.growing_cache)
    max_len = prompt_len + new
    tuned_model.set_caches(lambda: llama.static_cache(shape, batch, max_len, torch.float32, CPU))
    # Two fp32 paths (manual attention with a growing cache, SDPA with a static one) are
    # each within S*u*scale of the exact logits (tests/helpers/numerics.py), so of each other
    # within twice that; a wrong head pairing or cache slot moves them by far more.
    twin = numerics.Float64Llama(ref_model)
    with torch.no_grad():
        for tokens, pos in ((prompt, torch.arange(prompt_len)), (prompt[:, :1], [prompt_len])):
            pos = torch.as_tensor(pos)
            want_logits, got_logits = ref_model(tokens, pos), tuned_model(tokens, pos)
            keys = int(pos.max()) + 1
            seq = prompt if keys == prompt_len else torch.cat([prompt, prompt[:, :1]], 1)
            _, scale = twin.logits(seq)
            length = numerics.llama_path_length(
                layers=shape.layers,
                dim=shape.dim,
                heads=heads,
                head_dim=shape.dim // heads,
                ffn=shape.ffn,
                keys=keys,
            )
            tol = 2 * length * numerics.U32 * scale.max().item()
            assert (got_logits[:, -1] - want_logits[:, -1]).abs().max().item() <= tol
    want, _, _ = llm.Reference(model(False), batch, prompt_len, new).generate(prompt)
    gen = llm.Tuned(model(True), batch, prompt_len, new, compile=False)
    runs = [gen.generate(prompt)[0] for _ in range(2)]  # the static cache is reused
    assert torch.equal(runs[0], runs[1])  # the same program twice: exactly the same
    numerics.assert_greedy_tokens(model(False), prompt, want, runs[0])


def test_gqa_support_is_asked_of_sdpa_not_read_from_its_docstring() -> None:
    """``python -OO`` strips docstrings: a docstring test would silently turn it off."""

    class OldFunctional:
        @staticmethod
        def scaled_dot_product_attention(q: Any, k: Any, v: Any) -> Any:
            return q  # an SDPA from before enable_gqa: the keyword is a TypeError

    class NoDocs:
        __doc__ = None

        @staticmethod
        def scaled_dot_product_attention(*args: Any, **kwargs: Any) -> Any:
            return F.scaled_dot_product_attention(*args, **kwargs)

    assert llama._sdpa_has_gqa(torch, NoDocs) is True
    assert llama._sdpa_has_gqa(torch, OldFunctional) is False
