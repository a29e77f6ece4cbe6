"""Error classification of the V2 client against a real HTTP server answering chosen statuses,
and the retry policy each kind gets (calls counted on the server)."""

from __future__ import annotations

import time

import pytest

from backend.config import Settings
from backend.inference import (
    ModelMisconfiguredError,
    ModelRejectedError,
    ModelServerError,
    ModelUnavailableError,
    with_retries,
)
from backend.inference.v2 import V2Client, _parse_retry_after
from tests.backend.fake_model import fake_model
from tests.backend.helpers import circles_png

PNG = circles_png(seed=1)
ARGS = {"width": 160, "height": 120, "score_threshold": 0.0, "max_detections": 5}


def client(url: str, **settings) -> V2Client:
    return V2Client(Settings(model_server_url=url, model_timeout_s=5, **settings))


async def infer_error(url: str) -> Exception:
    """What one infer call to `url` raises."""
    c = client(url)
    try:
        await c.infer(PNG, **ARGS)
    except Exception as exc:
        return exc
    finally:
        await c.close()
    raise AssertionError("the call succeeded")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ModelRejectedError),
        (413, ModelRejectedError),
        (422, ModelRejectedError),
        (401, ModelMisconfiguredError),
        (403, ModelMisconfiguredError),
        (404, ModelMisconfiguredError),
        (405, ModelMisconfiguredError),
        (500, ModelServerError),
        (501, ModelServerError),
        (408, ModelUnavailableError),
        (429, ModelUnavailableError),
        (502, ModelUnavailableError),
        (503, ModelUnavailableError),
        (504, ModelUnavailableError),
    ],
)
async def test_each_status_has_its_kind(status, kind):
    with fake_model(mode=status) as model:
        error = await infer_error(model.url)
    assert type(error) is kind
    assert str(status) in str(error) and f"http://{model.url}" in str(error)


async def test_retry_after_is_read_from_a_429():
    with fake_model(mode=429, headers={"Retry-After": "2"}) as model:
        error = await infer_error(model.url)
    assert isinstance(error, ModelUnavailableError) and error.retry_after_s == 2.0


def test_retry_after_forms():
    assert _parse_retry_after("3") == 3.0
    assert _parse_retry_after(None) is None and _parse_retry_after("soon") is None
    assert 0 <= _parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") <= 0.0  # a past date: now
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < _parse_retry_after(future) <= 31


async def test_a_429_retry_after_is_waited_for():
    """Two calls one Retry-After apart, although the backoff asks for 0.05 s."""
    with fake_model(mode=429, headers={"Retry-After": "1"}) as model:
        c = client(model.url)
        start = time.monotonic()
        try:
            with pytest.raises(ModelUnavailableError):
                await with_retries(
                    lambda: c.infer(PNG, **ARGS), deadline_s=1.5, backoff_s=0.05, backoff_max_s=0.1
                )
        finally:
            await c.close()
        elapsed = time.monotonic() - start
    assert model.infers() == 2 and 1.0 <= elapsed < 3


async def test_a_deterministic_500_is_given_up_after_three_calls():
    with fake_model(mode=500) as model:
        c = client(model.url)
        try:
            with pytest.raises(ModelRejectedError) as info:
                await with_retries(
                    lambda: c.infer(PNG, **ARGS), deadline_s=30, backoff_s=0.05, backoff_max_s=0.1
                )
        finally:
            await c.close()
    assert model.infers(500) == 3 and info.value.attempts == 3
    assert "given up on this image" in str(info.value)


@pytest.mark.parametrize("status", [404, 401])
async def test_misconfiguration_is_not_retried_and_readiness_says_so(status):
    with fake_model(mode=status) as model:
        c = client(model.url)
        try:
            with pytest.raises(ModelMisconfiguredError) as info:
                await with_retries(
                    lambda: c.infer(PNG, **ARGS), deadline_s=30, backoff_s=0.05, backoff_max_s=0.1
                )
            assert model.infers() == 1 and info.value.attempts == 1
            with pytest.raises(ModelMisconfiguredError):
                await c.ready()
        finally:
            await c.close()


async def test_wrong_model_name_is_a_misconfiguration_for_infer_and_readiness():
    with fake_model() as model:
        c = client(model.url, model_name="no-such")
        try:
            with pytest.raises(ModelMisconfiguredError, match="MODEL_NAME='no-such'"):
                await c.infer(PNG, **ARGS)
            with pytest.raises(ModelMisconfiguredError, match="404"):
                await c.ready()
        finally:
            await c.close()
        ok = client(model.url)
        try:
            await ok.ready()
            assert len((await ok.infer(PNG, **ARGS)).circles) == 1
        finally:
            await ok.close()


async def test_not_ready_is_unavailable():
    with fake_model(mode=503) as model:
        c = client(model.url)
        try:
            with pytest.raises(ModelUnavailableError) as info:
                await c.ready()
        finally:
            await c.close()
    assert type(info.value) is ModelUnavailableError
