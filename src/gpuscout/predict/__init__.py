"""Predictions for GPUs you don't own, and what each would cost.

    >>> from gpuscout.store import Store
    >>> from gpuscout.predict import predict_run, advise
    >>> with Store.open(None) as store:
    ...     prediction = predict_run(store)        # the newest run with workloads
    ...     advice = advise(store=store)  # or workload=NAME

The model is described in ``gpuscout.predict.roofline``; every constant it assumes, with
its source, in ``gpuscout.predict.defaults``. Importing this package reads no data and
imports no framework: predict reads stored Results, never runs anything.
"""

from __future__ import annotations

from gpuscout.predict.advice import advise
from gpuscout.predict.project import predict_results, predict_run
from gpuscout.predict.records import Advice, Calibration, CostRow, Prediction, Projection

__all__ = [
    "Advice",
    "Calibration",
    "CostRow",
    "Prediction",
    "Projection",
    "advise",
    "predict_results",
    "predict_run",
]
