"""Checks of gpuscout itself, run as programs: what used to be scripts in ``scripts/``.

- ``gpu_check``: every GPU check and benchmark as one list of capped steps, for one
  time-limited call of a GPU machine (``python -m gpuscout.validate.gpu_check --plan``
  prints the list), with a CPU rehearsal of the same steps (``--device cpu --tiny``).
- ``summary``: a GPU check's output folder as the section of docs/benchmarks.md.
- ``versions``: the versions step (python, torch and its CUDA build, the NVIDIA driver).

Nothing here imports a framework or touches CUDA on import: each check that needs torch
runs it in its own process.
"""
