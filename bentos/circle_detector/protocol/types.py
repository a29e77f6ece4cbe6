"""Transport-neutral inference messages (what REST and gRPC requests are translated into).

Tensors are held as numpy arrays: `object` arrays of `bytes` for BYTES, numeric dtypes otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class InferInput:
    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestedOutput:
    name: str
    binary: bool | None = None  # None: the transport's default
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferRequest:
    inputs: list[InferInput]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[RequestedOutput] | None = None  # None: every output

    def input(self, name: str) -> InferInput | None:
        return next((i for i in self.inputs if i.name == name), None)


@dataclass
class InferOutput:
    name: str
    datatype: str
    data: np.ndarray
    binary: bool = False

    @property
    def shape(self) -> list[int]:
        return [int(d) for d in self.data.shape]


@dataclass
class InferResponse:
    model_name: str
    model_version: str | None
    outputs: list[InferOutput]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
