"""V2 gRPC transport: `inference.GRPCInferenceService` over the same dataplane as REST.

Built on the generated stubs that `tritonclient` ships; each method only translates messages
and maps `ProtocolError` to its gRPC status code.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from .protocol import InferResponse, ProtocolError, grpc_codec

if TYPE_CHECKING:
    from .dataplane import DataPlane

T = TypeVar("T")
Context = grpc.aio.ServicerContext

logger = logging.getLogger(__name__)


class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    """The V2 methods the protocol requires; the others answer UNIMPLEMENTED (stub default).

    Method names are fixed by the proto (`inference.GRPCInferenceService`).
    """

    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane

    async def ServerLive(
        self, request: service_pb2.ServerLiveRequest, context: Context
    ) -> service_pb2.ServerLiveResponse:
        return service_pb2.ServerLiveResponse(live=self.dataplane.live())

    async def ServerReady(
        self, request: service_pb2.ServerReadyRequest, context: Context
    ) -> service_pb2.ServerReadyResponse:
        return service_pb2.ServerReadyResponse(ready=self.dataplane.ready())

    async def ModelReady(
        self, request: service_pb2.ModelReadyRequest, context: Context
    ) -> service_pb2.ModelReadyResponse:
        ready = await self._call(
            context, self.dataplane.model_ready, request.name, request.version or None
        )
        return service_pb2.ModelReadyResponse(ready=ready)

    async def ServerMetadata(
        self, request: service_pb2.ServerMetadataRequest, context: Context
    ) -> service_pb2.ServerMetadataResponse:
        return service_pb2.ServerMetadataResponse(**self.dataplane.server_metadata())

    async def ModelMetadata(
        self, request: service_pb2.ModelMetadataRequest, context: Context
    ) -> service_pb2.ModelMetadataResponse:
        meta = await self._call(
            context, self.dataplane.model_metadata, request.name, request.version or None
        )
        tensor = service_pb2.ModelMetadataResponse.TensorMetadata
        return service_pb2.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[tensor(**t) for t in meta["inputs"]],
            outputs=[tensor(**t) for t in meta["outputs"]],
        )

    async def ModelInfer(
        self, request: service_pb2.ModelInferRequest, context: Context
    ) -> service_pb2.ModelInferResponse:
        async def infer() -> InferResponse:
            parsed = grpc_codec.parse_request(request)
            return await self.dataplane.infer(
                request.model_name, parsed, request.model_version or None
            )

        response = await self._call_async(context, infer)
        return grpc_codec.encode_response(response)

    async def _call(self, context: Context, func: Callable[..., T], *args: Any) -> T:
        try:
            return func(*args)
        except ProtocolError as exc:
            await _abort(context, exc)

    async def _call_async(self, context: Context, func: Callable[[], Awaitable[T]]) -> T:
        try:
            return await func()
        except ProtocolError as exc:
            await _abort(context, exc)


async def _abort(context: Context, exc: ProtocolError) -> NoReturn:
    await context.abort(grpc.StatusCode[exc.grpc_code], exc.message)
    raise AssertionError("ServicerContext.abort always raises")


async def start_server(
    dataplane: DataPlane, host: str, port: int, max_message_bytes: int = 256 * 1024 * 1024
) -> tuple[grpc.aio.Server, int]:
    """Start the gRPC server on the running event loop; returns it and the bound port."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
    )
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceServicer(dataplane), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot bind the gRPC server to {host}:{port}")
    await server.start()
    logger.info("V2 gRPC server listening on %s:%d", host, bound)
    return server, bound
