"""The RPC registry and the data mover status mapping (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from dataferry.api.rpc.registry import InvalidParams, MethodNotFound, RpcRegistry
from dataferry.jobs.model import Job
from dataferry.jobs.states import JobState
from dataferry.mover.status import mover_status


def test_registry_binds_positional_and_named_params() -> None:
    reg = RpcRegistry()

    def add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    reg.register("math.add", add)
    assert reg.call("math.add", [1]) == 3
    assert reg.call("math.add", {"a": 1, "b": 5}) == 6
    assert reg.get("math.add").help == "Add two numbers."
    with pytest.raises(InvalidParams):
        reg.call("math.add", [1, 2, 3])
    with pytest.raises(InvalidParams):
        reg.call("math.add", {"c": 1})
    with pytest.raises(MethodNotFound):
        reg.call("math.sub", [])
    with pytest.raises(ValueError):
        reg.register("math.add", add)
    with pytest.raises(ValueError):
        reg.register("system.listMethods", add)
    assert reg.names() == ["math.add"]


def test_params_are_checked_against_the_type_hints_before_the_method_runs() -> None:
    reg = RpcRegistry()
    calls: list[tuple[str, int, dict[str, object]]] = []

    def put(name: str, count: int = 1, data: dict[str, object] | None = None) -> int:
        calls.append((name, count, data or {}))
        return count

    reg.register("things.put", put)
    reg.register("things.echo", lambda value: value)  # no hints: anything goes
    assert reg.call("things.put", ["a", 42]) == 42
    assert reg.call("things.echo", [[1, {"a": None}]]) == [1, {"a": None}]
    wrong_params: list[tuple[list[Any] | dict[str, Any], str]] = [
        ([["a"]], "name: Input should be a valid string"),
        ([7], "name: Input should be a valid string"),
        (["a", "many"], "count: Input should be a valid integer"),
        ({"name": "a", "data": [1]}, "data: Input should be a valid dictionary"),
        # an int is strict: lax mode would read these as 1, 42 and 5
        (["a", True], "count: Input should be a valid integer"),
        (["a", "42"], "count: Input should be a valid integer"),
        (["a", 5.0], "count: Input should be a valid integer"),
    ]
    for params, wrong in wrong_params:
        with pytest.raises(InvalidParams) as refused:
            reg.call("things.put", params)
        assert wrong in refused.value.message and "things.put(" in refused.value.message
    assert calls == [("a", 42, {})]  # the refused calls never ran


def test_ints_are_strict_inside_optionals_and_lists_too() -> None:
    reg = RpcRegistry()

    def page(limit: int | None = None, ids: list[int] | None = None, flag: bool = False) -> Any:
        return [limit, ids, flag]

    reg.register("things.page", page)
    assert reg.call("things.page", {"limit": 5, "ids": [1, 2]}) == [5, [1, 2], False]
    assert reg.call("things.page", {"limit": None}) == [None, None, False]
    wrong_params: list[tuple[dict[str, Any], str]] = [
        ({"limit": True}, "limit: Input should be a valid integer"),
        ({"limit": "5"}, "limit: Input should be a valid integer"),
        ({"ids": [1, False]}, "ids.1: Input should be a valid integer"),
    ]
    for params, wrong in wrong_params:
        with pytest.raises(InvalidParams) as refused:
            reg.call("things.page", params)
        assert wrong in refused.value.message, refused.value.message
    # the signature shown is the method's own
    assert reg.get("things.page").signature().startswith("things.page(limit: 'int | None'")


def _job(state: JobState, error: str = "") -> Job:
    now = datetime.now(UTC)
    return Job(
        id=7, kind="mover.move", queue="q", state=state, params={}, result={}, task="",
        task_percent=0.0, bytes_done=0, bytes_total=None, files_done=0, files_total=None,
        attempts=1, max_attempts=5, error=error, next_run_at=None, lease_owner=None,
        lease_expires_at=None, worker="", created=now, updated=now,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (JobState.QUEUED, "PENDING"),
        (JobState.RETRYING, "PENDING"),
        (JobState.RUNNING, "IN_PROGRESS"),
        (JobState.SUCCEEDED, "COMPLETED"),
        (JobState.FAILED, "FAILED"),
        (JobState.CANCELLED, "FAILED"),
    ],
)
def test_every_job_state_has_a_mover_status(state: JobState, status: str) -> None:
    assert mover_status(_job(state))["status"] == status


def test_failed_status_carries_the_reason_and_ala_says_downloading() -> None:
    assert mover_status(_job(JobState.FAILED, "boom")) == {
        "id": 7,
        "status": "FAILED",
        "reason": "boom",
    }
    assert mover_status(_job(JobState.CANCELLED))["reason"] == "cancelled"
    running = replace(_job(JobState.RUNNING))
    assert mover_status(running, "DOWNLOADING")["status"] == "DOWNLOADING"
