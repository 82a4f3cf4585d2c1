"""A BERT-base-shaped encoder trained with a masked-LM head, sequences/s.

12 layers, hidden 768, 12 heads, FFN 3072, vocabulary 30522, post-LayerNorm, GELU,
the MLM decoder tied to the token embeddings; 15% of positions masked; AdamW. Dropout
is left out so that two implementations of the same step compute the same numbers.
Sequence lengths 128 and 512 (both unless ``--seq-len``) on synthetic token batches.

- reference: attention written out (softmax(QK^T / sqrt(d)) V) in eager fp32, batches
  copied from the host each step, ``loss.item()`` each step, the default AdamW.
- tuned: scaled_dot_product_attention (flash / memory-efficient kernels), bf16
  autocast where supported, the fused AdamW kernel, torch.compile on a GPU, batches
  resident on the device.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from gpuscout.count.flops import (
    TRAIN_MULTIPLIER,
    attention_flops,
    count_forward_flops,
    optimizer_impl,
    training_traffic,
)
from gpuscout.fit.spec import ModelSpec
from gpuscout.workloads.base import (
    WorkloadConfig,
    amp_dtype,
    dtype_name,
    fused_kwargs,
    index_batches,
)
from gpuscout.workloads.instruments import Instruments
from gpuscout.workloads.spec import DeviceSizes, RunFacts, RunSize, Scaling, Sizes, WorkloadSpec
from gpuscout.workloads.training import maybe_compile, measure_training

POOL_BATCHES = 4
MASK_FRACTION = 0.15


@dataclass(frozen=True)
class EncoderShape:
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab: int
    max_len: int = 512

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> EncoderShape:
        """The shape of a BERT-shaped row of the model table (family "encoder")."""
        if spec.family != "encoder" or spec.layers is None or spec.hidden is None:
            raise ValueError(f"{spec.id} is not an encoder this model can build")
        return cls(
            spec.layers,
            spec.hidden,
            spec.heads or 0,
            spec.intermediate or 0,
            spec.vocab or 0,
            spec.positions or 512,
        )


def check_model(name: str) -> EncoderShape:
    """The shape of the encoder workload's model ``name`` (bert-base, bert-large,
    bert-tiny); UnknownNameError naming the close ones."""
    return EncoderShape.from_spec(WORKLOAD.model_spec(name))


@functools.cache
def _classes() -> SimpleNamespace:
    import torch
    import torch.nn.functional as F
    from torch import Tensor, nn

    class SelfAttention(nn.Module):
        def __init__(self, shape: EncoderShape, sdpa: bool) -> None:
            super().__init__()
            self.heads, self.sdpa = shape.heads, sdpa
            self.qkv = nn.Linear(shape.hidden, 3 * shape.hidden)
            self.out = nn.Linear(shape.hidden, shape.hidden)

        def forward(self, x: Tensor) -> Tensor:
            b, s, h = x.shape
            q, k, v = self.qkv(x).view(b, s, 3, self.heads, h // self.heads).unbind(2)
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # b, heads, s, head_dim
            if self.sdpa:
                a = F.scaled_dot_product_attention(q, k, v)
            else:
                scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
                a = scores.softmax(dim=-1) @ v
            out: Tensor = self.out(a.transpose(1, 2).reshape(b, s, h))
            return out

        def extra_flops(self, inputs: tuple[Tensor, ...], output: Tensor) -> int:
            b, s, h = inputs[0].shape
            return attention_flops(b, self.heads, s, s, h // self.heads)

    class Layer(nn.Module):
        def __init__(self, shape: EncoderShape, sdpa: bool) -> None:
            super().__init__()
            self.attn = SelfAttention(shape, sdpa)
            self.ln1 = nn.LayerNorm(shape.hidden)
            self.ffn = nn.Sequential(
                nn.Linear(shape.hidden, shape.ffn), nn.GELU(), nn.Linear(shape.ffn, shape.hidden)
            )
            self.ln2 = nn.LayerNorm(shape.hidden)

        def forward(self, x: Tensor) -> Tensor:
            x = self.ln1(x + self.attn(x))
            out: Tensor = self.ln2(x + self.ffn(x))
            return out

    class Encoder(nn.Module):
        def __init__(self, shape: EncoderShape, sdpa: bool) -> None:
            super().__init__()
            self.shape = shape
            self.tok = nn.Embedding(shape.vocab, shape.hidden)
            self.pos = nn.Embedding(shape.max_len, shape.hidden)
            self.ln = nn.LayerNorm(shape.hidden)
            self.layers = nn.ModuleList(Layer(shape, sdpa) for _ in range(shape.layers))
            self.head = nn.Sequential(
                nn.Linear(shape.hidden, shape.hidden), nn.GELU(), nn.LayerNorm(shape.hidden)
            )
            self.bias = nn.Parameter(torch.zeros(shape.vocab))
            for m in self.modules():  # BERT's initialisation
                if isinstance(m, nn.Linear | nn.Embedding):
                    nn.init.normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear):
                    nn.init.zeros_(m.bias)

        def forward(self, tokens: Tensor) -> Tensor:
            pos = torch.arange(tokens.shape[1], device=tokens.device)
            x = self.ln(self.tok(tokens) + self.pos(pos))
            for layer in self.layers:
                x = layer(x)
            # The decoder shares the embedding matrix (weight tying), as BERT's does.
            logits: Tensor = F.linear(self.head(x), self.tok.weight, self.bias)
            return logits

        def extra_flops(self, inputs: tuple[Tensor, ...], output: Tensor) -> int:
            b, s = inputs[0].shape
            return 2 * b * s * self.shape.hidden * self.shape.vocab  # the tied decoder

    return SimpleNamespace(Encoder=Encoder, Layer=Layer)


def make_encoder(shape: EncoderShape, sdpa: bool) -> Any:
    return _classes().Encoder(shape, sdpa)


def mlm_batches(shape: EncoderShape, n: int, seq: int, seed: int) -> tuple[Any, Any]:
    """``n`` token sequences with 15% of positions replaced by [MASK]; labels are the
    original tokens there and -100 (ignored) elsewhere."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(5, shape.vocab, (n, seq), generator=gen)
    masked = torch.rand(n, seq, generator=gen) < MASK_FRACTION
    labels = torch.where(masked, tokens, torch.full_like(tokens, -100))
    return torch.where(masked, torch.full_like(tokens, 4), tokens), labels  # 4: [MASK]


class EncoderWorkload:
    def __init__(self, cfg: WorkloadConfig, device: Any, seq: int) -> None:
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        sizes = WORKLOAD.sizes.pick(gpu=cfg.on_gpu, quick=cfg.quick)
        self.cfg, self.device, self.seq = cfg, device, seq
        self.name = cfg.model or sizes.model
        self.shape = check_model(self.name)
        if seq > self.shape.max_len:
            raise ValueError(f"sequence length {seq} > the model's {self.shape.max_len}")
        self.batch = self.samples_per_step = cfg.batch_size or sizes.batch
        torch.manual_seed(cfg.seed)
        model = make_encoder(self.shape, sdpa=cfg.tuned).to(device)
        with torch.device("meta"):
            meta = make_encoder(self.shape, sdpa=False)
        fwd = count_forward_flops(
            meta, lambda: meta(torch.zeros(self.batch, seq, dtype=torch.long, device="meta"))
        )
        self.flops_per_step = float(TRAIN_MULTIPLIER * fwd)
        self.amp = amp_dtype(cfg)
        tokens, labels = mlm_batches(self.shape, POOL_BATCHES * self.batch, seq, cfg.seed + 2)
        # Tuned: the indices live on the device, so a step copies nothing from the host.
        self._order = index_batches(
            len(tokens), self.batch, cfg.seed + 1, device if cfg.tuned else None
        )
        self.compiled = False
        self.compile_error: str | None = None
        self.eager = model
        if cfg.tuned:
            self.tokens, self.labels = tokens.to(device), labels.to(device)
            self.model = maybe_compile(model, cfg)
            self.compiled = self.model is not model
            kw = fused_kwargs(torch.optim.AdamW, device)
        else:
            self.model = model
            batches = (idx.tolist() for idx in self._order)
            self._loader = iter(DataLoader(TensorDataset(tokens, labels), batch_sampler=batches))
            kw = {}
            self.running_loss = 0.0
        self.fused = bool(kw.get("fused"))
        self.opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, **kw)
        # Counted on the SDPA model: flash attention writes no seq x seq matrix.
        with torch.device("meta"):
            meta = make_encoder(self.shape, sdpa=True)
        self.bytes_per_step, self.host_ops_per_step, self.bytes_per_step_bf16 = training_traffic(
            meta,
            lambda: meta(torch.zeros(self.batch, seq, dtype=torch.long, device="meta")),
            optimizer="adamw",
            optimizer_impl=optimizer_impl(kw, device),
            activation_bytes_per_elem=4 if self.amp is None else 2,
        )

    def make_batch(self) -> Any:
        if self.cfg.tuned:
            idx = next(self._order)
            return self.tokens.index_select(0, idx), self.labels.index_select(0, idx)
        tokens, labels = next(self._loader)
        return tokens.to(self.device), labels.to(self.device)

    def step(self, batch: Any) -> Any:
        import torch
        import torch.nn.functional as F

        tokens, labels = batch
        dtype = self.amp or torch.float32
        with torch.autocast(self.device.type, dtype, enabled=self.amp is not None):
            logits = self.model(tokens)
        loss: Any = F.cross_entropy(
            logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100
        )
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if not self.cfg.tuned:
            self.running_loss += loss.item()
        return loss.detach()

    def uncompile(self) -> None:
        self.model, self.compiled = self.eager, False

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "batch_size": self.batch,
            "seq_len": self.seq,
            "dtype": dtype_name(self.amp),
            "attention": "sdpa" if self.cfg.tuned else "eager",
            "fused_optimizer": self.fused,
            "synthetic_data": True,
            "data_source": "synthetic (random tokens, 15% masked)",
        }


def seq_lens(cfg: WorkloadConfig) -> list[int]:
    if cfg.seq_len is not None:
        return [cfg.seq_len]
    return list(WORKLOAD.sizes.pick(gpu=cfg.on_gpu, quick=cfg.quick).lengths)


def build(cfg: WorkloadConfig, device: Any = None) -> EncoderWorkload:
    import torch

    dev = torch.device(cfg.device) if device is None else device
    return EncoderWorkload(cfg, dev, seq_lens(cfg)[0])


def run(cfg: WorkloadConfig, inst: Instruments) -> list[dict[str, Any]]:
    out = []
    sizes = WORKLOAD.sizes.pick(gpu=cfg.on_gpu, quick=cfg.quick)
    for seq in seq_lens(cfg):
        wl = EncoderWorkload(cfg, inst.device, seq)
        steps = cfg.steps or sizes.steps or 1
        result = measure_training(wl, cfg, inst, steps=steps, unit=WORKLOAD.unit)
        result["variant"] = f"seq{seq}"
        out.append(result)
        del wl
    return out


def describe(b: RunFacts) -> str:
    return f"encoder ({b.model or 'BERT-base'} masked-LM training, sequence {b.seq_len})"


WORKLOAD = WorkloadSpec(
    name="encoder",
    task="train",
    description="BERT-base-shaped encoder, masked-LM training at sequence 128 and 512",
    unit="sequences/s",
    run_size=RunSize(177_282, "BERT's SQuAD v1.1 fine-tune: 2 epochs of 88,641 sequences"),
    models={
        "bert-base": "encoder",
        "bert-large": "encoder-bert-large",
        "bert-tiny": "encoder-bert-tiny",
    },
    sizes=DeviceSizes(
        gpu=Sizes("bert-base", 32, steps=10, lengths=(128, 512)),
        cpu=Sizes("bert-base", 4, steps=3, lengths=(128, 512)),
        gpu_quick=Sizes("bert-base", 32, steps=10, lengths=(128,)),
        cpu_quick=Sizes("bert-tiny", 4, steps=3, lengths=(128,)),
    ),
    build=build,
    run=run,
    describe=describe,
    prior="train",
    timeout_s=1800.0,
    order=30,
    length_name="seq_len",
    # Per rank (model, batch, sequence length, timed steps). On a CPU the steps are
    # milliseconds: 10 of them, or the medians are noise.
    scaling=Scaling(
        "ddp",
        DeviceSizes(
            gpu=Sizes("bert-base", 32, steps=20, lengths=(128,)),
            cpu=Sizes("bert-tiny", 8, steps=10, lengths=(128,)),
            gpu_quick=Sizes("bert-base", 16, steps=10, lengths=(128,)),
            cpu_quick=Sizes("bert-tiny", 4, steps=10, lengths=(64,)),
        ),
    ),
    bf16_on_gpu=True,
    optimizer="adamw",
)
