"""The Fashion-MNIST MLP of the Keras beginner tutorial, as a tutorial writes it and as
an expert would.

    Flatten -> Dense(128, relu) -> Dense(10, softmax); Adam(1e-3); 5 epochs; batch 32

Both implementations train the same model from the same initial weights (Keras's
Glorot-uniform weights and zero biases; Keras's Adam epsilon 1e-7) on the same data
in the same per-epoch order, so they differ only in how the work reaches the device:

- reference: the PyTorch quickstart loop. A per-sample Dataset converting bytes to
  floats, a DataLoader collating 32 of them, a copy to the device, and ``loss.item()``
  every step (a host synchronisation per step, as a progress bar needs).
- tuned: the dataset converted once and kept on the device, the epoch's order applied
  by indexing there, the fused Adam kernel, no host synchronisation until the epoch
  ends. On a GPU, the whole training step (forward, backward, Adam with
  ``capturable=True``) is captured in a CUDA graph, many steps per graph, so there is
  no Python per step at all.

What ``time_s`` covers is the same for both: the epochs of training steps, from an idle
device to the one synchronisation after the last step. The tuned program's graph capture
(with the warm-up steps PyTorch's recipe runs first) happens before that, in
``prepare``, and is reported apart as ``graph_capture_s``; every result says so in
``timed``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import time
from collections.abc import Iterator
from typing import Any

from gpuscout.count.flops import (
    TRAIN_MULTIPLIER,
    count_forward_flops,
    optimizer_impl,
    training_traffic,
)
from gpuscout.fit.models import find_model
from gpuscout.fit.spec import ModelSpec
from gpuscout.workloads.base import (
    WorkloadConfig,
    as_tensors,
    dtype_name,
    fused_kwargs,
    synchronize,
)
from gpuscout.workloads.instruments import Instruments, section_extra
from gpuscout.workloads.spec import (
    Comparison,
    DeviceSizes,
    RealData,
    RunFacts,
    RunSize,
    Sizes,
    WorkloadSpec,
)
from gpuscout.workloads.training import check_finite

EPOCHS, BATCH, LR, EPS = 5, 32, 1e-3, 1e-7
GRAPH_CHUNK = 64  # training steps per CUDA graph replay
MODEL = "mlp"  # the model-table row of the Keras tutorial's 784-128-10


def make_mlp(spec: ModelSpec, device: Any = "cpu") -> Any:
    """The MLP of a model-table row (family "mlp": ``mlp_dims``, input first): Flatten,
    then Linear layers with a ReLU between each two, Keras's initialisation."""
    import torch
    from torch import nn

    if spec.family != "mlp":
        raise ValueError(f"{spec.id} is not an MLP")
    dims = spec.mlp_dims
    layers: list[nn.Module] = [nn.Flatten()]
    with torch.device(device):
        for i in range(len(dims) - 1):
            layers += [nn.Linear(dims[i], dims[i + 1]), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])  # no ReLU after the output layer
    if str(device) != "meta":
        for layer in model:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)  # Keras's glorot_uniform
                nn.init.zeros_(layer.bias)
    return model


def make_model(device: Any = "cpu") -> Any:
    """The tutorial's model: Flatten -> Dense(128, relu) -> Dense(10)."""
    return make_mlp(find_model(MODEL), device)


def forward_flops_per_sample() -> int:
    import torch

    model = make_model("meta")
    return count_forward_flops(model, lambda: model(torch.empty(1, 1, 28, 28, device="meta")))


def traffic(batch: int, opt_impl: str) -> tuple[int, int]:
    """(bytes_per_step, host_ops_per_step) of one fp32 Adam training step."""
    import torch

    model = make_model("meta")
    t = training_traffic(
        model,
        lambda: model(torch.empty(batch, 1, 28, 28, device="meta")),
        optimizer="adam",
        optimizer_impl=opt_impl,
        activation_bytes_per_elem=4,
    )
    return t.bytes_per_step, t.host_ops_per_step


def epoch_orders(n: int, epochs: int, seed: int) -> list[Any]:
    """One shuffled order per epoch, drawn on the CPU so every implementation and
    device sees the same order (a device RNG would differ between CPU and GPU)."""
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    return [torch.randperm(n, generator=gen) for _ in range(epochs)]


class _Common:
    def __init__(self, cfg: WorkloadConfig, device: Any, dataset: Any) -> None:
        import torch

        self.cfg, self.device, self.dataset = cfg, device, dataset
        self.batch = cfg.batch_size or WORKLOAD.sizes.pick(gpu=cfg.on_gpu, quick=cfg.quick).batch
        self.samples_per_step = self.batch
        self.flops_per_step = float(TRAIN_MULTIPLIER * forward_flops_per_sample() * self.batch)
        torch.manual_seed(cfg.seed)
        self.model = make_model(device)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self._order: Iterator[Any] = iter(())

    def evaluate(self) -> tuple[float, float]:
        """Test accuracy and loss (untimed, the same code for both implementations)."""
        import torch

        x, y = as_tensors(self.dataset.test)
        self.model.eval()
        correct, loss = 0, 0.0
        with torch.no_grad():
            for i in range(0, len(y), 5000):
                xb, yb = x[i : i + 5000].to(self.device), y[i : i + 5000].to(self.device)
                logits = self.model(xb).float()
                loss += float(self.loss_fn(logits, yb)) * len(yb)
                correct += int((logits.argmax(1) == yb).sum())
        self.model.train()
        return correct / len(y), loss / len(y)


class Reference(_Common):
    """The tutorial loop, step by step."""

    def __init__(self, cfg: WorkloadConfig, device: Any, dataset: Any) -> None:
        import torch

        super().__init__(cfg, device, dataset)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LR, eps=EPS)
        self.data = _PerSampleDataset(dataset.train)
        self.bytes_per_step, self.host_ops_per_step = traffic(
            self.batch, optimizer_impl({}, device)
        )

    def loader(self, order: Any) -> Any:
        from torch.utils.data import DataLoader

        data: Any = self.data  # a map-style dataset: __len__ and __getitem__
        return DataLoader(data, batch_size=self.batch, sampler=order.tolist())

    def start_epoch(self, order: Any) -> None:
        self._order = iter(self.loader(order))

    def make_batch(self) -> Any:
        return next(self._order)

    def step(self, batch: Any) -> Any:
        x, y = batch[0].to(self.device), batch[1].to(self.device)
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad()
        return loss.detach()

    def prepare(self, orders: list[Any]) -> list[Any]:
        """Nothing to set up: the tutorial's loop starts training straight away."""
        return orders

    def train_epoch(self, order: Any) -> float:
        total, steps = 0.0, 0
        for batch in self.loader(order):
            total += self.step(batch).item()
            steps += 1
        return total / steps

    run_epoch = train_epoch  # its per-step host reads are part of what it measures


class _PerSampleDataset:
    """Like torchvision's dataset with ToTensor: bytes to a float tensor per sample."""

    def __init__(self, split: Any) -> None:
        self.images = bytearray(split.images)
        self.labels = split.labels
        self.shape = (split.channels, split.height, split.width)
        self.size = split.sample_bytes

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        import torch

        px = torch.frombuffer(self.images, dtype=torch.uint8, count=self.size, offset=i * self.size)
        return px.view(self.shape).float().div(255.0), int(self.labels[i])


class Tuned(_Common):
    """Data on the device, no host synchronisation per step; CUDA graphs on a GPU."""

    def __init__(self, cfg: WorkloadConfig, device: Any, dataset: Any) -> None:
        import torch

        super().__init__(cfg, device, dataset)
        x, y = as_tensors(dataset.train)
        self.x = x.view(len(y), -1).to(device)
        self.y = y.to(device)
        self.graphs = device.type == "cuda" and cfg.option("cuda_graphs", True)
        extra: dict[str, Any] = {"capturable": True} if self.graphs else {}
        kw = fused_kwargs(torch.optim.Adam, device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LR, eps=EPS, **kw, **extra)
        self.bytes_per_step, self.host_ops_per_step = traffic(
            self.batch, optimizer_impl(kw, device)
        )
        self.loss_sum = torch.zeros((), device=device)
        self.capture_s = 0.0  # warm-up and graph capture, paid once, before time_s
        self._captured: dict[int, tuple[Any, Any]] = {}

    def start_epoch(self, order: Any) -> None:
        self._order = iter(order.split(self.batch))

    def make_batch(self) -> Any:
        return next(self._order).to(self.device)

    def step(self, idx: Any) -> Any:
        loss = self.loss_fn(self.model(self.x.index_select(0, idx)), self.y.index_select(0, idx))
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=False)  # the grads keep their addresses for graphs
        self.loss_sum += loss.detach()
        return loss.detach()

    def _capture(self, ks: tuple[int, ...]) -> None:
        """Graphs of ``k`` consecutive steps each, reading indices from static buffers.

        Warm-up steps run on a side stream first (PyTorch's whole-network capture
        recipe); they change the weights and Adam's state, so both are put back after:
        training starts from exactly where it was.
        """
        import torch

        params = list(self.model.parameters())
        saved_params = [p.detach().clone() for p in params]
        # Adam creates its state on the first step; if it has none yet, "put back"
        # means zeros (step 0, zero moments), which is what a fresh Adam starts from.
        saved_state = {id(p): {k: v.clone() for k, v in self.opt.state[p].items()} for p in params}
        idx0 = torch.zeros(self.batch, dtype=torch.long, device=self.device)
        stream: Any = torch.cuda.Stream  # untyped in torch's stubs
        side = stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self.step(idx0)
        torch.cuda.current_stream(self.device).wait_stream(side)
        for k in ks:
            idx = torch.zeros(k, self.batch, dtype=torch.long, device=self.device)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                for j in range(k):
                    self.step(idx[j])
            self._captured[k] = (graph, idx)
        with torch.no_grad():
            for p, saved in zip(params, saved_params, strict=True):
                p.copy_(saved)
                old = saved_state[id(p)]
                for key, value in self.opt.state[p].items():
                    value.copy_(old[key]) if key in old else value.zero_()
            self.loss_sum.zero_()

    def prepare(self, orders: list[Any]) -> list[Any]:
        """Everything paid once, before the timed epochs: the epochs' orders copied to
        the device (a copy from pageable host memory inside the timed region could wait
        for the steps queued before it) and, on a GPU, the graphs captured. Returns the
        orders to train on."""
        on_device = [order.to(self.device) for order in orders]
        if on_device:
            self._ensure_captured(len(on_device[0]) // self.batch)
        synchronize(self.device)
        return on_device

    def _ensure_captured(self, full: int) -> None:
        """Capture the graphs an epoch of ``full`` whole batches replays, once."""
        if not self.graphs or self._captured:
            return
        import time

        t0 = time.perf_counter()
        self._capture((GRAPH_CHUNK, 1) if full >= GRAPH_CHUNK else (1,))
        synchronize(self.device)
        self.capture_s = time.perf_counter() - t0

    def train_epoch(self, order: Any) -> float:
        return float(self.run_epoch(order))

    def run_epoch(self, order: Any) -> Any:
        """One epoch; its mean loss as a device tensor, not read back here: the host
        waits for the device once, after the last epoch, not once per epoch."""
        perm = order.to(self.device, non_blocking=True)
        n, b = len(perm), self.batch
        full = n // b
        self.loss_sum.zero_()
        done = 0
        if self.graphs:
            self._ensure_captured(full)  # done already when prepare() ran
            for k in (GRAPH_CHUNK, 1):
                chunks = (full - done) // k
                if chunks == 0 or k not in self._captured:
                    continue
                graph, idx = self._captured[k]
                for _ in range(chunks):
                    idx.copy_(perm[done * b : (done + k) * b].view(k, b))
                    graph.replay()
                    done += k
        for s in range(done, full):
            self.step(perm[s * b : (s + 1) * b])
        steps = full
        if n % b:  # the last, short batch: Keras's fit trains on it too
            self.step(perm[full * b :])
            steps += 1
        return self.loss_sum / steps  # a new tensor: the next epoch zeroes loss_sum


def load(cfg: WorkloadConfig) -> Any:
    from gpuscout.data import load_dataset

    return load_dataset(
        "fashion-mnist",
        cfg.data_dir,
        allow_download=bool(cfg.option("allow_download", False)),
        limit=cfg.limit_samples,
        seed=cfg.seed,
    )


def build(cfg: WorkloadConfig, device: Any = None, dataset: Any = None) -> Any:
    import torch

    device = torch.device(cfg.device) if device is None else device
    dataset = load(cfg) if dataset is None else dataset
    wl = (Tuned if cfg.tuned else Reference)(cfg, device, dataset)
    # make_batch() walks one epoch's order, for tests and tools that step by hand.
    order = epoch_orders(dataset.train.count, 1, cfg.seed)[0]
    wl.start_epoch(order)
    return wl


def run(cfg: WorkloadConfig, inst: Instruments) -> list[dict[str, Any]]:
    import torch

    dataset = load(cfg)
    wl = build(cfg, inst.device, dataset)
    epochs = cfg.epochs or WORKLOAD.sizes.pick(gpu=cfg.on_gpu, quick=cfg.quick).epochs or 1
    orders = wl.prepare(epoch_orders(dataset.train.count, epochs, cfg.seed))
    with inst.section() as sec:
        epoch_losses = [wl.run_epoch(order) for order in orders]
        synchronize(inst.device)
    losses = [float(loss) for loss in epoch_losses]
    # The run is the measurement, so its result is checked after: a NaN epoch (a broken
    # graph replay, say) fails the run instead of reporting a fast time for nothing.
    check_finite(*losses, what="mlp epoch loss")
    accuracy, test_loss = wl.evaluate()
    samples = dataset.train.count * epochs
    flops = TRAIN_MULTIPLIER * forward_flops_per_sample() * samples
    extra = section_extra(sec) | {
        "epochs": epochs,
        "batch_size": wl.batch,
        "samples": samples,
        "accuracy": accuracy,
        "loss": losses[-1],
        "epoch_losses": losses,
        "test_loss": test_loss,
        "flops_per_step": wl.flops_per_step,
        "bytes_per_step": wl.bytes_per_step,
        "host_ops_per_step": wl.host_ops_per_step,
        "params": sum(p.numel() for p in wl.model.parameters()),
        "flops_total": flops,
        "achieved_tflops": flops / sec.time_s / 1e12,
        "dtype": dtype_name(None),
        "compile": False,
        "cuda_graphs": bool(getattr(wl, "graphs", False)),
        "graph_capture_s": getattr(wl, "capture_s", None),
        "timed": timed(epochs, bool(getattr(wl, "graphs", False))),
        "synthetic_data": dataset.synthetic,
        "data_source": dataset.source,
        "data_note": cfg.option("data_note", None),
        "threads": torch.get_num_threads(),
    }
    return [
        {"variant": None, "figure": samples / sec.time_s, "unit": WORKLOAD.unit, "extra": extra}
    ]


def timed(epochs: int, graphs: bool) -> str:
    """What ``time_s`` covers, in words, for the result."""
    epochs_text = f"{epochs} epoch{'' if epochs == 1 else 's'}"
    what = f"{epochs_text} of training steps, ending in one device synchronisation"
    if graphs:
        return f"{what}; graph capture and its warm-up steps excluded (graph_capture_s)"
    return f"{what}; the first steps' one-time setup included, as a user pays it"


# -- the comparison (--compare): the Keras tutorial, as written --------------------------


def _keras_env(cfg: WorkloadConfig) -> None:
    # Keras picks its backend and torch its GPUs at import: decide before importing.
    if "KERAS_BACKEND" not in os.environ:
        for backend, module in (("tensorflow", "tensorflow"), ("jax", "jax"), ("torch", "torch")):
            if importlib.util.find_spec(module) is not None:
                os.environ["KERAS_BACKEND"] = backend
                break
    os.environ["CUDA_VISIBLE_DEVICES"] = cfg.device.split(":")[1] if cfg.on_gpu else ""


def keras_tutorial(cfg: WorkloadConfig) -> list[dict[str, Any]]:
    """The TensorFlow/Keras beginner tutorial as written (Keras 3 ``Sequential`` and
    ``fit``, default batch 32), on the same data."""
    _keras_env(cfg)
    # Imported by name: both are optional and untyped here.
    keras = importlib.import_module("keras")
    np = importlib.import_module("numpy")

    ds = load(cfg)

    def arrays(split: Any) -> tuple[Any, Any]:
        x = np.frombuffer(split.images, dtype=np.uint8).reshape(split.count, 28, 28)
        return x / 255.0, np.frombuffer(split.labels, dtype=np.uint8).astype("int64")

    (x, y), (xt, yt) = arrays(ds.train), arrays(ds.test)
    keras.utils.set_random_seed(cfg.seed)
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    epochs, batch = cfg.epochs or EPOCHS, cfg.batch_size or BATCH
    t0 = time.perf_counter()
    history = model.fit(x, y, epochs=epochs, batch_size=batch)  # verbose as in the tutorial
    elapsed = time.perf_counter() - t0
    _, accuracy = model.evaluate(xt, yt, verbose=0)
    samples = ds.train.count * epochs
    extra = {
        "time_s": elapsed,
        "epochs": epochs,
        "batch_size": batch,
        "accuracy": float(accuracy),
        "loss": float(history.history["loss"][-1]),
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "synthetic_data": ds.synthetic,
        "data_source": ds.source,
    }
    return [{"variant": None, "figure": samples / elapsed, "unit": "samples/s", "extra": extra}]


def describe(b: RunFacts) -> str:
    return "mlp (the Fashion-MNIST MLP, trained)"


WORKLOAD = WorkloadSpec(
    name="mlp",
    task="train",
    description="Fashion-MNIST MLP 784-128-10 (Keras tutorial), Adam, batch 32",
    unit="samples/s",
    run_size=RunSize(300_000, "the Keras tutorial: 5 epochs of 60,000 Fashion-MNIST images"),
    models={"mlp": MODEL},
    sizes=DeviceSizes(
        gpu=Sizes(MODEL, BATCH, epochs=EPOCHS), cpu=Sizes(MODEL, BATCH, epochs=EPOCHS)
    ),
    build=build,
    run=run,
    describe=describe,
    prior="train",
    timeout_s=900.0,
    order=10,
    quick=True,
    # On a CPU the quick MLP trains 1 epoch on 20,000 images instead of 5 on 60,000, to
    # keep `gpuscout run` near a minute on two cores; the GPU keeps the tutorial's run.
    quick_cpu={"epochs": 1, "limit_samples": 20_000},
    # The whole training step is captured in CUDA graphs on a GPU (one replay per 64).
    graphed_on_gpu=("train",),
    optimizer="adam",
    comparison=Comparison("keras", "the Keras tutorial program", keras_tutorial),
    data=RealData("fashion-mnist", "Fashion-MNIST", "The MLP"),
)
