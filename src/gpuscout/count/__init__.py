"""Counting the work of a step from its model: FLOPs, the fewest bytes it must move, and
kernel launches (``flops``: any torch module, run on the meta device, so even 8B
parameters cost nothing to count). What is counted here is what every figure is divided
by (TFLOPS, % of ceiling, the predictor's split), so it lives in one place; each
workload applies it to its own model. Importing this package does not import torch.
"""
