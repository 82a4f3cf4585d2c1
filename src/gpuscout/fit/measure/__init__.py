"""The torch side of ``gpuscout fit``: build the model with random weights (``build``),
run real steps and find the largest batch in an isolated worker (``trials``, driven by
``driver`` in the parent), or replay the same steps on fake tensors (``simulate``). The
arithmetic in ``gpuscout.fit`` never imports this package; this package imports torch
only inside functions.
"""
