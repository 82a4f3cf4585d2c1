"""The bytes and kernel launches a step needs, counted from the model (what the
predictor divides by bandwidth and by the per-launch cost), against hand counts."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from gpuscout.count.flops import (  # noqa: E402
    OPTIMIZER_OPS,
    count_traffic,
    optimizer_impl,
    training_traffic,
)
from helpers.workload_runs import all_tuned_on_cpu  # noqa: E402


@pytest.fixture(autouse=True)
def _offline_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUSCOUT_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv("GPUSCOUT_OFFLINE", "1")


def test_views_launch_nothing_and_write_nothing() -> None:
    flat = torch.nn.Flatten().to("meta")
    t = count_traffic(flat, lambda: flat(torch.empty(2, 3, 4, device="meta")))
    assert (t.activation_elems, t.forward_ops) == (0, 0)


def test_training_bytes_of_one_linear_layer_by_hand() -> None:
    layer = torch.nn.Linear(4, 3).to("meta")  # 15 fp32 weights: 60 bytes
    nbytes, ops, nbytes_bf16 = training_traffic(
        layer,
        lambda: layer(torch.empty(5, 4, device="meta")),
        optimizer="sgd-momentum",
        optimizer_impl="fused",
        activation_bytes_per_elem=4,
    )
    # weights 2x + grads 1x + SGD-momentum reads w, g, buf and writes w, buf (5x) = 8 x 60,
    # plus the 5 x 3 output written in forward and read in backward.
    assert nbytes == 8 * 60 + 2 * 15 * 4
    # Under bf16 autocast the activations halve; fp32 weights, grads and momentum do not.
    assert nbytes_bf16 == 8 * 60 + 2 * 15 * 2
    # A fresh layer: on the first one the backward now accumulates into existing grads.
    fresh = torch.nn.Linear(4, 3).to("meta")
    fwd = count_traffic(fresh, lambda: fresh(torch.empty(5, 4, device="meta")), backward=True)
    assert fwd.forward_ops == 1  # one addmm
    assert fwd.backward_ops >= 2  # the input's and the weight's gradients at least
    assert ops == fwd.forward_ops + fwd.backward_ops + 1  # a fused optimizer: one kernel


def test_mlp_bytes_by_hand() -> None:
    from gpuscout.workloads import mlp

    weights = (784 * 128 + 128 + 128 * 10 + 10) * 4
    activations = 32 * (128 + 128 + 10)  # Linear, ReLU, Linear outputs (Flatten is a view)
    nbytes, loop_ops = mlp.traffic(32, "loop")
    assert nbytes == 10 * weights + 2 * activations * 4  # Adam: 2 states
    _, fused_ops = mlp.traffic(32, "fused")
    # The per-tensor loop launches Adam's ops once per weight tensor (4 of them).
    assert loop_ops - fused_ops == OPTIMIZER_OPS["adam"] * 4 - 1


def test_optimizer_implementation_follows_torch_defaults() -> None:
    assert optimizer_impl({"fused": True}, torch.device("cpu")) == "fused"
    assert optimizer_impl({"foreach": True}, torch.device("cpu")) == "foreach"
    assert optimizer_impl({}, torch.device("cpu")) == "loop"
    assert optimizer_impl({}, torch.device("meta")) == "loop"


def test_llm_prefill_bytes_and_decode_launches() -> None:
    from gpuscout.workloads.llama import make_meta, shape_of
    from gpuscout.workloads.llama import step_traffic as traffic

    s = shape_of("llama-tiny")
    with torch.device("meta"):
        meta = make_meta(s, 8)
    weights = sum(p.numel() * 2 for p in meta.parameters()) - s.vocab * s.dim * 2  # bf16
    got = traffic(s, 8, 2)
    assert got["prefill_bytes"] > weights  # the weights, then the activations
    assert got["decode_ops"] > s.layers * 5  # norms, four projections, the MLP per layer


def test_prefill_activations_by_hand_without_grad() -> None:
    # Without grad, each layer's output is freed as the next is made: a count keyed on
    # id() must not take a new tensor at a freed one's address for one already counted.
    from gpuscout.workloads.llama import make_meta, shape_of

    s, n = shape_of("llama-tiny"), 8
    with torch.device("meta"):
        meta = make_meta(s, n)
    tokens = torch.zeros(1, n, dtype=torch.long, device="meta")
    t = count_traffic(meta, lambda: meta(tokens, torch.arange(n, device="meta")))
    kv = s.kv_heads * (s.dim // s.heads)
    # Per layer: two RMSNorms, wq, wo, w2 (dim wide), wk, wv (kv wide), w1, w3 (ffn wide).
    layer = n * (5 * s.dim + 2 * kv + 2 * s.ffn)
    # The embedding's n rows; the final norm and the output on the last position only.
    assert t.activation_elems == n * s.dim + s.layers * layer + s.dim + s.vocab


def test_every_workload_result_carries_bytes_and_launches() -> None:
    results = all_tuned_on_cpu()
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    for r in results:
        assert r.extra["bytes_per_step"] > 0, r.name
        assert r.extra["host_ops_per_step"] > 0, r.name
        if r.extra["workload"] in ("cnn", "encoder", "llm"):  # predict's BF16_ON_GPU
            # What the same step moves in bf16 on a GPU: less in an fp32 run, the same in bf16
            bf16 = r.extra["bytes_per_step_bf16"]
            fp32 = r.extra["dtype"] == "fp32"
            assert (
                (bf16 < r.extra["bytes_per_step"]) if fp32 else (bf16 == r.extra["bytes_per_step"])
            )
        if r.extra["workload"] != "llm":
            assert r.extra["params"] > 0, r.name
