"""`gpuscout profile`: the user's own training script, observed as it runs.

``boot`` runs the script in a child process with ``hooks`` watching (step times, where
each step's time goes, one step's FLOPs and bytes, the model, placement, precision,
memory); ``spawn`` is the parent's side (the command, pass-through output, Ctrl-C, the
observations read back); ``bottleneck`` says what bounds the script and which fixes
matter, from the observations and the device's ceilings. Importing this package imports
no framework.
"""
