"""Models behind the dataplane: the small interface it knows them by, and the circle model.

`interface.ModelRuntime` is all the dataplane (`dataplane.py`) and the transports know of a
model; `circle.CircleRuntime` is the circle detector behind it (its tensors, pixel budgets,
decoding, batching of the network calls, refinement).
"""

from .interface import ModelRuntime, TensorSpec

__all__ = ["ModelRuntime", "TensorSpec"]
