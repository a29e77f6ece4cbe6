"""The Bento: the circle detector behind the V2 protocol (REST + gRPC), for `bentoml serve`.

The V2 routes are the same Starlette app the single-process launcher serves, mounted with
`@bentoml.asgi_app`; their inferences go through the in-process adaptive batcher of the
dataplane (`batching.py`), not through an HTTP call back into this worker. `detect` is the
Bento's own batchable API for BentoML's clients (`bentoml.SyncHTTPClient(url).detect(images=
[...])`), batched by BentoML's dispatcher with the same settings.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import BentoMLException, InvalidArgument

from . import http_timeouts, rest
from .settings import SettingsError, http_port, load_settings

try:
    SETTINGS = load_settings()
    HTTP_PORT = http_port(default=SETTINGS.port)
except SettingsError as exc:
    # `bentoml serve` imports this module first: one line and a non-zero exit, not a traceback.
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
# uvicorn in BentoML's worker uses the `auto` protocol: give it the header read timeout.
http_timeouts.install(SETTINGS.header_timeout_s)


def _model_ref(tag: str) -> bentoml.models.BentoModel:
    """The model-store reference, with a hint when the model was never imported."""
    ref = bentoml.models.BentoModel(tag)
    if ref.stored is None:
        from .model_store import bentoml_home

        raise BentoMLException(
            f"model {tag} is not in the BentoML model store of BENTOML_HOME={bentoml_home()}; "
            "import the committed model with `circle-detector import-model` (`make model`)"
        )
    return ref


@bentoml.service(
    name="circle-detector",
    workers=SETTINGS.workers,
    http={"port": HTTP_PORT},
    traffic={"timeout": 120},
)
@bentoml.asgi_app(rest.app, path="/")
class CircleDetectorService:
    """Loads the model from the BentoML model store, serves V2 over REST and gRPC."""

    if not SETTINGS.model_dir:  # a model directory (KServe's) replaces the model store
        model_ref = _model_ref(SETTINGS.model_tag)

    def __init__(self) -> None:
        # Heavy imports happen here, in the worker only: `bentoml serve` imports this module in
        # its supervisor process too, where they would only add to the cold start.
        from .model.artifacts import METADATA_FILE
        from .model_store import served_directory
        from .server import ModelServer

        if SETTINGS.model_dir:
            folder = served_directory(SETTINGS.model_dir, SETTINGS.model_tag)
        else:
            folder = Path(self.model_ref.path_of(METADATA_FILE)).parent
        self.server = ModelServer(folder, SETTINGS)
        self.server.attach(rest.app)

    @bentoml.api(
        batchable=True,
        max_batch_size=SETTINGS.max_batch_size,
        max_latency_ms=SETTINGS.max_latency_ms,
    )
    def detect(self, images: list[Path]) -> list[list[dict[str, Any]]]:
        """Circles of each image file at the operating point: bbox, center, radius, score.

        Files, not `PIL.Image`: BentoML's own image decoding answers 500 to a file that is not
        an image; this one refuses it with 400 and checks the pixel limit before decoding.
        """
        from .model.imageio import ImageDecodeError, decode_image

        arrays = []
        for i, path in enumerate(images):
            try:
                arrays.append(decode_image(Path(path).read_bytes(), SETTINGS.max_pixels))
            except (ImageDecodeError, OSError) as exc:
                raise InvalidArgument(f"image {i}: {exc}") from None
        found = self.server.newest().detector.detect(arrays)
        return [[circle.as_dict() for circle in circles] for circles in found]

    @bentoml.on_startup
    async def _start(self) -> None:
        await self.server.start()  # warms up in the background: liveness answers meanwhile

    @bentoml.on_shutdown
    async def _stop(self) -> None:
        await self.server.stop()


CircleDetectorService.add_asgi_middleware(rest.V2Dispatch, v2_app=rest.app)
