"""Does the measured work fit on a GPU? Asked of ``gpuscout.fit``, never guessed here.

The request mirrors the measured run: the workload's model, its batch and sequence
length, its optimizer, and the precision it would compute in on that GPU. A failure
inside fit (or fit missing) costs the answer ("n/a"), never the projection.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gpuscout.catalog import GpuSpec
from gpuscout.predict import facts
from gpuscout.predict.basis import Basis

GiB = 2**30


def _dtype(precision: str) -> str:
    return {"tf32": "fp32", "fp64": "fp32", "int8": "int8"}.get(precision, precision)


def request(b: Basis, precision: str, *, gpus: int = 1, zero: int = 0) -> Any:
    """The FitRequest of ``b`` computed in ``precision`` on ``gpus`` GPUs."""
    from gpuscout.fit import FitRequest, load_model

    if b.fit_request is not None:  # the request `gpuscout fit` would make
        template = b.fit_request
        float_format = template.dtype in ("fp32", "bf16", "fp16")
        return dataclasses.replace(
            template,
            dtype=_dtype(precision) if float_format else template.dtype,
            gpus=max(gpus, template.tp),
            zero=zero,
        )
    if b.workload == facts.UNMEASURED:  # an unmeasured model (predict.derived)
        model = load_model(str(b.model))
    else:
        model = facts.model_spec(b.workload, b.model)
    return FitRequest(
        model=model,
        mode="train" if b.training else "infer",
        batch_size=b.batch_size or 1,
        seq_len=b.seq_len if model.is_transformer else None,
        dtype=_dtype(precision),
        optimizer=facts.optimizer(b.workload),
        gpus=gpus,
        zero=zero,
        checkpointing=b.checkpointing,
    )


def check(req: Any, spec: GpuSpec) -> tuple[bool | None, str]:
    """(fits, a short note) for one request on one GPU."""
    try:
        from gpuscout.fit import fit_on

        got = fit_on(req, spec)
    except Exception as exc:  # fit is arithmetic over data: a gap costs only this cell
        return None, f"memory fit unavailable ({type(exc).__name__})"
    need = got.need_bytes / GiB
    usable = got.usable_bytes / GiB
    if got.fits:
        return True, f"needs {need:.1f} of {usable:.0f} GiB usable"
    return False, f"does not fit: needs {need:.1f} GiB, {usable:.0f} GiB usable per GPU"


def fits(
    b: Basis, spec: GpuSpec, precision: str, *, gpus: int = 1, zero: int = 0
) -> tuple[bool | None, str]:
    try:
        req = request(b, precision, gpus=gpus, zero=zero)
    except Exception as exc:
        return None, f"memory fit unavailable ({type(exc).__name__})"
    return check(req, spec)
