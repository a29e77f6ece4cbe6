"""MemoryBudget: waits while the budget is taken, refuses with 503 + Retry-After past the wait."""

from __future__ import annotations

import asyncio

import pytest

from backend.budget import MemoryBudget
from backend.errors import APIError


async def test_work_beyond_the_budget_waits_then_runs():
    budget = MemoryBudget("test", capacity=100, wait_s=5)
    order: list[str] = []

    async def job(name: str, amount: int, hold_s: float) -> None:
        async with budget.reserve(amount):
            order.append(f"{name}+")
            await asyncio.sleep(hold_s)
            order.append(f"{name}-")

    await asyncio.gather(job("a", 70, 0.1), job("b", 70, 0))
    assert order == ["a+", "a-", "b+", "b-"]
    assert budget.used == 0 and budget.peak == 70


async def test_a_wait_past_the_limit_is_a_503_with_retry_after():
    budget = MemoryBudget("pixel memory", capacity=10, wait_s=0.05, retry_after_s=7)
    async with budget.reserve(10):
        with pytest.raises(APIError) as info:
            async with budget.reserve(1):
                pass
    assert info.value.status_code == 503 and info.value.headers == {"Retry-After": "7"}
    assert "pixel memory" in info.value.message
    assert budget.used == 0


async def test_a_request_bigger_than_the_budget_runs_alone():
    budget = MemoryBudget("test", capacity=10, wait_s=1)
    async with budget.reserve(10**9) as held:
        assert held == 10 and budget.used == 10
