"""V2 gRPC transport: `inference.GRPCInferenceService` over the same dataplane as REST.

Built on the generated stubs that `tritonclient` ships; each method only translates messages
and maps `ProtocolError` to its gRPC status code. Any other exception is INTERNAL with a
generic message naming a request id (the request's `id`, else a generated one); its text goes
to the log with that id, never to the client.

Memory: messages are capped by `grpc.max_receive_message_length`; a ModelInfer holds its
estimated size of the process-wide byte budget while it is parsed and answered, typed contents
are counted before conversion (`protocol.Limits`), parsing runs off the event loop, and a big
request is followed by a `malloc_trim` (`memory.py`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import grpc
from google.protobuf import json_format
from tritonclient.grpc import service_pb2, service_pb2_grpc

from .. import tracing
from ..admission import Budget, unbounded
from ..protocol import InferResponse, Limits, ProtocolError
from ..protocol.limits import DEFAULT_LIMITS
from . import codec

if TYPE_CHECKING:
    from ..dataplane import DataPlane

T = TypeVar("T")
Context = grpc.aio.ServicerContext

logger = logging.getLogger(__name__)


class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    """The V2 methods the protocol requires; the others answer UNIMPLEMENTED (stub default).

    Method names are fixed by the proto (`inference.GRPCInferenceService`).
    """

    def __init__(
        self,
        dataplane: DataPlane,
        limits: Limits = DEFAULT_LIMITS,
        byte_budget: Budget | None = None,
    ) -> None:
        self.dataplane = dataplane
        self.limits = limits
        self.byte_budget = byte_budget or unbounded("in-flight bytes")

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

    async def ModelStatistics(
        self, request: service_pb2.ModelStatisticsRequest, context: Context
    ) -> service_pb2.ModelStatisticsResponse:
        stats = await self._call(
            context, self.dataplane.model_statistics, request.name, request.version or None
        )
        return json_format.ParseDict(stats, service_pb2.ModelStatisticsResponse())

    async def ModelConfig(
        self, request: service_pb2.ModelConfigRequest, context: Context
    ) -> service_pb2.ModelConfigResponse:
        config = await self._call(
            context, self.dataplane.model_config, request.name, request.version or None
        )
        return json_format.ParseDict({"config": config}, service_pb2.ModelConfigResponse())

    async def RepositoryIndex(
        self, request: service_pb2.RepositoryIndexRequest, context: Context
    ) -> service_pb2.RepositoryIndexResponse:
        models = await self._call(context, self.dataplane.repository_index, request.ready)
        return json_format.ParseDict({"models": models}, service_pb2.RepositoryIndexResponse())

    async def RepositoryModelLoad(
        self, request: service_pb2.RepositoryModelLoadRequest, context: Context
    ) -> service_pb2.RepositoryModelLoadResponse:
        parameters = codec.parameters_to_dict(request.parameters)
        await self._await(context, self.dataplane.load_model(request.model_name, parameters))
        return service_pb2.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: service_pb2.RepositoryModelUnloadRequest, context: Context
    ) -> service_pb2.RepositoryModelUnloadResponse:
        parameters = codec.parameters_to_dict(request.parameters)
        await self._await(context, self.dataplane.unload_model(request.model_name, parameters))
        return service_pb2.RepositoryModelUnloadResponse()

    async def ModelInfer(self, data: bytes, context: Context) -> service_pb2.ModelInferResponse:
        with tracing.server_span("V2 ModelInfer", context.invocation_metadata):
            return await self._model_infer(data, context)

    async def _model_infer(self, data: bytes, context: Context) -> service_pb2.ModelInferResponse:
        """Registered with no deserializer (`_handlers`): the message arrives as bytes, is sized
        on the wire, holds its cost of the byte budget, and is parsed on a thread."""
        request_id: str | None = None
        failure: tuple[grpc.StatusCode, str] | None = None
        response: InferResponse | None = None
        _, cost = codec.wire_sizes(data)
        try:
            async with self.byte_budget.hold(cost):
                request = await asyncio.to_thread(codec.parse_message, data, self.limits)
                request_id = request.id or None
                name, version = request.model_name, request.model_version or None
                self.dataplane.check_model(name, version)
                parsed = await asyncio.to_thread(codec.parse_request, request, self.limits)
                del request  # its parsed contents may be hundreds of MB: free them early
                response = await self.dataplane.infer(name, parsed, version)
                del parsed
        except ProtocolError as exc:
            failure = grpc.StatusCode[exc.grpc_code], exc.message
        except Exception as exc:
            failure = grpc.StatusCode.INTERNAL, _log_internal(exc, request_id)
        if failure is not None:
            # A status, not `context.abort`: its exception would put this frame, and with it
            # the message, in a reference cycle that only the garbage collector frees.
            context.set_code(failure[0])
            context.set_details(failure[1])
            tracing.fail(failure[0].value[0], failure[1])
            return service_pb2.ModelInferResponse()
        assert response is not None
        return codec.encode_response(response)

    async def _call(self, context: Context, func: Callable[..., T], *args: Any) -> T:
        try:
            return func(*args)
        except ProtocolError as exc:
            await _abort(context, grpc.StatusCode[exc.grpc_code], exc.message)
        except Exception as exc:
            await _abort(context, grpc.StatusCode.INTERNAL, _log_internal(exc, None))

    async def _await(self, context: Context, call: Awaitable[T]) -> T:
        """`_call` for a coroutine."""
        try:
            return await call
        except ProtocolError as exc:
            await _abort(context, grpc.StatusCode[exc.grpc_code], exc.message)
        except Exception as exc:
            await _abort(context, grpc.StatusCode.INTERNAL, _log_internal(exc, None))


async def _abort(context: Context, code: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("ServicerContext.abort always raises")


def _log_internal(exc: Exception, request_id: str | None) -> str:
    """Log an unexpected error under a request id; the generic message the client gets."""
    request_id = request_id or uuid.uuid4().hex
    logger.error("unexpected error in a gRPC call (request id %s)", request_id, exc_info=exc)
    return f"internal error (request id {request_id})"


#: The V2 gRPC service's methods this server implements (the others answer UNIMPLEMENTED).
SERVICE = "inference.GRPCInferenceService"
_UNARY = (
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelStatistics",
    "ModelConfig",
    "RepositoryIndex",
    "RepositoryModelLoad",
    "RepositoryModelUnload",
)


def _handlers(servicer: InferenceServicer) -> dict[str, grpc.RpcMethodHandler]:
    """Method handlers; ModelInfer's takes the raw message bytes (no deserializer), so that
    the message is sized and parsed off the event loop by the servicer itself."""
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name),
            request_deserializer=getattr(service_pb2, f"{name}Request").FromString,
            response_serializer=getattr(service_pb2, f"{name}Response").SerializeToString,
        )
        for name in _UNARY
    }
    handlers["ModelInfer"] = grpc.unary_unary_rpc_method_handler(
        servicer.ModelInfer,
        request_deserializer=None,
        response_serializer=service_pb2.ModelInferResponse.SerializeToString,
    )
    return handlers


async def start_server(
    dataplane: DataPlane,
    host: str,
    port: int,
    max_message_bytes: int = 64 * 1024 * 1024,
    limits: Limits = DEFAULT_LIMITS,
    byte_budget: Budget | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Start the gRPC server on the running event loop; returns it and the bound port."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
    )
    handlers = _handlers(InferenceServicer(dataplane, limits, byte_budget))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot bind the gRPC server to {host}:{port}")
    await server.start()
    logger.info("V2 gRPC server listening on %s:%d", host, bound)
    return server, bound
