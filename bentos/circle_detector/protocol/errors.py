"""Protocol errors that carry their own HTTP status and gRPC code, so transports only translate."""

from __future__ import annotations

from typing import ClassVar


class ProtocolError(Exception):
    """Base error; `message` is what the client sees as `{"error": message}`."""

    http_status: ClassVar[int] = 500
    grpc_code: ClassVar[str] = "INTERNAL"
    #: Seconds a client should wait before retrying (REST `Retry-After`); None: no header.
    retry_after_s: ClassVar[int | None] = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ProtocolError):
    """The request is malformed or its tensors are invalid (400 / INVALID_ARGUMENT)."""

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"


class NotFound(ProtocolError):
    """Unknown model or version (404 / NOT_FOUND)."""

    http_status = 404
    grpc_code = "NOT_FOUND"


class NotReady(ProtocolError):
    """The model has not finished loading and warming up (503 / UNAVAILABLE)."""

    http_status = 503
    grpc_code = "UNAVAILABLE"
    retry_after_s = 1


class PayloadTooLarge(ProtocolError):
    """The request body is over the configured limit (413 / RESOURCE_EXHAUSTED)."""

    http_status = 413
    grpc_code = "RESOURCE_EXHAUSTED"


class Refused(ProtocolError):
    """Load shedding: the server has more work than it can do in time, so it refuses this
    request at once (429 + `Retry-After` / RESOURCE_EXHAUSTED, the pair google.rpc's mapping
    gives each other); the same request may succeed later. `reason` labels the refusal in
    `/metrics`."""

    http_status = 429
    grpc_code = "RESOURCE_EXHAUSTED"
    retry_after_s = 1
    reason: ClassVar[str] = "refused"

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        if retry_after_s is not None:  # the instance's own estimate, over the class default
            self.retry_after_s = retry_after_s


class QueueFull(Refused):
    """The batcher's queue holds as many images as it may (`CIRCLE_DETECTOR_MAX_QUEUE_SIZE`)."""

    reason = "queue_full"


class InFlightFull(Refused):
    """As many images are in flight as the runtime may work on at once (`load_shedding.py`,
    `CIRCLE_DETECTOR_MAX_IN_FLIGHT`): refused on arrival, before any decoding."""

    reason = "in_flight"


class Overloaded(Refused):
    """An image queued longer than the latency budget (`CIRCLE_DETECTOR_MAX_LATENCY_MS`) when
    its batch would start: the backstop behind the bounded queue."""

    reason = "latency_budget"


class Busy(Refused):
    """The process-wide memory budget stayed full for the admission timeout (was 503: now
    the HTTP twin of its RESOURCE_EXHAUSTED, as every load-shedding refusal)."""

    retry_after_s = 2
    reason = "admission"


class DeadlineExceeded(ProtocolError):
    """The request's own `timeout` parameter passed while it was queued: refused, never run.
    REST 503 as Triton answers its "Request timeout expired"; gRPC DEADLINE_EXCEEDED. No
    `Retry-After`: the deadline was the client's."""

    http_status = 503
    grpc_code = "DEADLINE_EXCEEDED"
    reason: ClassVar[str] = "deadline"


class RequestTimeout(ProtocolError):
    """The request body did not arrive within the body timeout (408 / DEADLINE_EXCEEDED)."""

    http_status = 408
    grpc_code = "DEADLINE_EXCEEDED"
