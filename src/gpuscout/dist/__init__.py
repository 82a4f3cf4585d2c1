"""Several processes working together: collectives and data-parallel scaling across
torchrun ranks (``job``: plan, run, store), on one node, on several (c10d) or under
Slurm (``torchrun``, ``slurm``), and what each rank runs (``rank_main``, ``rank``,
``collectives``, ``scaling``); ``diagnose`` names the rank that died or hung. Importing
this package does not import torch.
"""
