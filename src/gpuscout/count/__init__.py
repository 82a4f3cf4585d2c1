"""Counting the work of a step from the model: FLOPs, the fewest bytes it must move, and
kernel launches (``flops``: any torch module, on the meta device; ``decoder``: the
Llama-shaped decoder's prefill and decode steps). What is counted here is what every
figure is divided by (TFLOPS, % of ceiling, the predictor's split), so it lives in one
place. Importing this package does not import torch.
"""
