"""What the network takes and gives, shared by its torch definition, its ONNX export and the
runtimes that run either (this module imports neither torch nor onnxruntime)."""

from __future__ import annotations

#: Output stride of the heatmap relative to the network input.
STRIDE = 4
#: Inputs are padded to a multiple of this (the deepest stride).
PAD_MULTIPLE = 32
#: Input (N, 1, H, W) float32: standardised grey, H and W multiples of PAD_MULTIPLE.
INPUT_NAME = "image"
#: Outputs at stride 4: (N, 1, h, w) heatmap logits, (N, 2, h, w) offset, (N, 1, h, w) log radius.
OUTPUT_NAMES = ("heatmap", "offset", "log_radius")
