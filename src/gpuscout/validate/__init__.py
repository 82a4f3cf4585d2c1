"""Checks of gpuscout itself, run as programs (``scripts/`` holds their entry points).

- ``gpu_check``: every GPU check and benchmark as one list of capped steps, for one
  time-limited call of a GPU machine (``python -m gpuscout.validate.gpu_check --plan``
  prints the list), with a CPU rehearsal of the same steps (``--device cpu --tiny``).
- ``summary``: a GPU check's output folder as the section of docs/benchmarks.md.
- ``versions``: the versions step (python, torch and its CUDA build, the NVIDIA driver).
- ``workload_goals``: the workload goals (the MLP in 1 s, compiled ResNet-50, llama
  decode against its bandwidth bound), measured and judged.
- ``fit_against_measured``: fit's predicted peak memory against the measured one (or a
  fake-tensor replay), with accelerate's estimate beside.
- ``predict_against_published``: the cross-GPU predictor against Lambda's published
  training table.
- ``predict_across_gpus``: the predictor calibrated on one GPU's run and checked against
  another GPU's run.
- ``triad_against_stream``: the host-memory triad beside a compiled STREAM triad.
- ``report_screenshot``: docs/report.png from the report of the newest runs.
- ``readme``: every README command run, and its shown output kept true.

Nothing here imports a framework or touches CUDA on import: torch is imported inside the
functions that need it, most of them in a worker process of their own.
"""
