"""KServe's own Python `ModelServer` serving the detector, as KServe's custom-model docs write it:
a `kserve.Model` whose synchronous `predict` takes and returns V2 messages.

    python -m benchmarks.peer_servers.kserve_model --http_port 8080 --grpc_port 8081

(KServe's `ModelServer` reads its flags from the command line itself.)
"""

from __future__ import annotations

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer

from benchmarks.peer_servers.common import OUTPUTS, detect, load_detector

MODEL_NAME = "circle-detector"


class CircleDetectorModel(Model):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.load()

    def load(self) -> bool:
        self.detector = load_detector()
        self.ready = True
        return self.ready

    def predict(
        self, payload: InferRequest, headers: dict[str, str] | None = None
    ) -> InferResponse:
        tensors = detect(self.detector, payload.inputs[0].as_numpy())
        outputs = []
        for name, array in tensors.items():
            if array.size == 0:
                # KServe 0.21 answers 500 to an empty tensor over REST; one zero row of padding
                # is what the V2 contract allows past `num_detections`.
                array = np.zeros((*array.shape[:1], 1, *array.shape[2:]), dtype=array.dtype)
            output = InferOutput(name=name, shape=list(array.shape), datatype=OUTPUTS[name][0])
            output.set_data_from_numpy(array)  # binary: what tritonclient's gRPC reads
            outputs.append(output)
        return InferResponse(
            response_id=payload.id or "", model_name=self.name, infer_outputs=outputs
        )


if __name__ == "__main__":
    ModelServer().start([CircleDetectorModel(MODEL_NAME)])
