"""MLServer serving the detector, as MLServer's custom-runtime docs write it: an `MLModel` with
async `load` and `predict`, adaptive batching set in `model-settings.json` by `peers.py`.

    mlserver start FOLDER   # FOLDER holds settings.json and model-settings.json
"""

from __future__ import annotations

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

from benchmarks.peer_servers.common import detect, load_detector


class CircleDetectorRuntime(MLModel):
    async def load(self) -> bool:
        self.detector = load_detector()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        tensors = detect(self.detector, payload.inputs[0].data.root)
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[NumpyCodec.encode_output(name, array) for name, array in tensors.items()],
        )
