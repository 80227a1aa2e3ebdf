"""Stateful property test: three instances, random puts, edits and deletes on
random instances, random syncs between random pairs, network cuts mid-batch
(before a request arrives, or after it was applied and the answer was lost,
which is also a crash between applying a batch and the end of the sync),
duplicated and reordered batches, clock skew within the allowed drift.

After a final round of syncs all three hold the same records, state for state,
and no acknowledged write is lost: each field ends with its highest-stamped
write, and every write that lost to a concurrent one (one whose writer had
not seen it) is in some instance's conflict log."""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from dataferry.config import Settings
from dataferry.errors import Conflict, TransientError
from dataferry.records import hlc, merge
from dataferry.records.service import PROTOCOLS, state_of
from tests.support.replication import LocalTransport

UUIDS = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(4)]
FIELDS = ["a", "b", "c"]
COLLECTION = "obs"
SKEW_MS = 60_000  # within the default allowed drift of 300 s


def skewed_wall(skew: int) -> int:
    """An instance's wall clock, ``skew`` ms off the real one."""
    return hlc.wall_ms() + skew


@dataclass(frozen=True)
class Write:
    uuid: str
    field: str
    stamp: merge.Stamp
    present: bool
    value: Any
    base: merge.Stamp | None
    replaced: merge.Stamp | None  # the field's stamp at the writer just before (seen by it)


class Replicas(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="df-prop-"))
        self.cores: list[Any] = []
        self.writes: list[Write] = []
        self.deletes: list[tuple[str, merge.Stamp]] = []
        self.sent: list[tuple[int, bytes]] = []  # (receiver, push body) for replays
        self.pulled: list[tuple[int, str, dict[str, Any]]] = []  # (receiver, source, batch)

    @initialize(skews=st.lists(st.integers(-SKEW_MS, SKEW_MS), min_size=3, max_size=3))
    def start(self, skews: list[int]) -> None:
        from dataferry.app import build

        for i, skew in enumerate(skews):
            s = Settings(
                home=self.tmp / f"home{i}",
                records={"batch_records": 2},
            )
            core = build(s)
            core.records.store.wall = functools.partial(skewed_wall, skew)
            self.cores.append(core)

    def teardown(self) -> None:
        for core in self.cores:
            core.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- writes ---------------------------------------------------------------------------
    def _stamps(self, core: Any, uuid: str) -> merge.State | None:
        with core.db.read() as s:
            row = core.records.store.get(s, COLLECTION, uuid)
        return state_of(row) if row else None

    @rule(
        i=st.integers(0, 2),
        uuid=st.sampled_from(UUIDS),
        doc=st.dictionaries(st.sampled_from(FIELDS), st.integers(0, 3), min_size=1),
    )
    def put(self, i: int, uuid: str, doc: dict[str, int]) -> None:
        core = self.cores[i]
        before = self._stamps(core, uuid)
        rec = core.records.put(COLLECTION, doc, uuid)
        state = self._stamps(core, uuid)
        assert state is not None and not state.deleted and state.data() == doc
        for name, f in state.fields.items():
            if f.stamp[0] == rec.hlc and f.stamp[1] == core.records.instance_id:
                old = before.fields.get(name) if before else None
                replaced = old.stamp if old else None
                self.writes.append(Write(uuid, name, f.stamp, f.present, f.value, f.base, replaced))

    @rule(i=st.integers(0, 2), uuid=st.sampled_from(UUIDS))
    def delete(self, i: int, uuid: str) -> None:
        core = self.cores[i]
        before = self._stamps(core, uuid)
        if before is None or before.deleted:
            return
        core.records.delete(COLLECTION, uuid)
        after = self._stamps(core, uuid)
        assert after is not None and after.deleted and after.delete is not None
        self.deletes.append((uuid, after.delete))

    # -- syncs, cuts, replays ---------------------------------------------------------------
    @rule(
        i=st.integers(0, 2),
        j=st.integers(0, 2),
        cut_at=st.none() | st.integers(0, 12),
        after=st.booleans(),
        protocol=st.sampled_from(PROTOCOLS),  # version 1: as an older instance would sync
    )
    def sync(self, i: int, j: int, cut_at: int | None, after: bool, protocol: int) -> None:
        if i == j:
            return
        calls = [0]

        def fault(call: str, phase: str) -> None:
            if phase == ("after" if after else "before"):
                if cut_at is not None and calls[0] == cut_at:
                    raise TransientError(f"network cut at {call} ({phase})")
                calls[0] += 1

        transport = LocalTransport(self.cores[j].replication_protocol, fault, protocol)
        original_pull = transport.pull

        def recording_pull(*args: Any) -> dict[str, Any]:
            batch = original_pull(*args)
            self.pulled.append((i, self.cores[j].records.instance_id, batch))
            return batch

        transport.pull = recording_pull  # type: ignore[method-assign,assignment]
        with contextlib.suppress(TransientError):  # interrupted: the next sync resumes
            self.cores[i].replication.sync_with(transport)
        self.sent += [(j, body) for body in transport.sent]

    @precondition(lambda self: bool(self.sent))
    @rule(k=st.integers(0, 10_000))
    def replay_push(self, k: int) -> None:
        """A duplicated or late (reordered) push batch arrives again."""
        j, body = self.sent[k % len(self.sent)]
        with contextlib.suppress(Conflict):  # a batch leaving a gap is refused
            self.cores[j].replication_protocol.push(body)

    @precondition(lambda self: bool(self.pulled))
    @rule(k=st.integers(0, 10_000))
    def replay_pull(self, k: int) -> None:
        i, source, batch = self.pulled[k % len(self.pulled)]
        with contextlib.suppress(Conflict):
            self.cores[i].records.apply(
                COLLECTION,
                batch["changes"],
                source=source,
                cursor_from=batch["since"],
                cursor_to=batch["cursor"],
            )

    @invariant()
    def feeds_are_ordered(self) -> None:
        for core in self.cores:
            try:
                page = core.records.changes(COLLECTION, 0, 1000)
            except Exception:
                continue  # the collection does not exist there yet
            seqs = [c.seq for c in page.changes]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    # -- the end: converge and check ------------------------------------------------------------
    def converge(self) -> None:
        for _ in range(2):
            for i, j in ((0, 1), (1, 2), (2, 0), (0, 1)):
                self.cores[i].replication.sync_with(
                    LocalTransport(self.cores[j].replication_protocol)
                )

    def check_final(self) -> None:
        if not self.writes:
            return
        self.converge()
        states = []
        for core in self.cores:
            with core.db.read() as s:
                rows = core.records.store.get_many(s, COLLECTION, UUIDS)
            states.append({u: (state_of(r), r.deleted) for u, r in rows.items()})
        assert states[0] == states[1] == states[2], "instances differ after the final syncs"
        final = states[0]
        logged: set[tuple[str, str, merge.Stamp]] = set()
        for core in self.cores:
            for c in core.records.conflicts(COLLECTION, limit=10_000):
                logged.add((c["uuid"], c["field"], (c["lost_hlc"], c["lost_origin"])))
        # a write its own instance (or one that had received it) overwrote later was
        # edited, not lost: only writes nobody saw before overwriting must be logged
        bases = {(w.uuid, w.field, w.replaced) for w in self.writes if w.replaced is not None}
        for w in self.writes:
            state, _ = final[w.uuid]
            f = state.fields[w.field]
            assert f.stamp >= w.stamp, f"write {w} lost: final {f}"
            best = max(x.stamp for x in self.writes if (x.uuid, x.field) == (w.uuid, w.field))
            assert f.stamp == best
            if f.stamp == w.stamp:
                assert (f.present, f.value) == (w.present, w.value)
            elif (w.uuid, w.field, w.stamp) not in bases and not any(
                (x.uuid, x.field, x.present, x.value) == (w.uuid, w.field, w.present, w.value)
                and x.stamp > w.stamp
                for x in self.writes
            ):  # a value that lost to a concurrent, different value must be in a log
                assert (w.uuid, w.field, w.stamp) in logged, f"lost write {w} not in any log"
        for uuid, stamp in self.deletes:
            state, deleted = final[uuid]
            assert state.delete is not None and state.delete >= stamp, "a delete was lost"
            assert deleted == state.deleted


def test_three_instances_converge_and_lose_nothing() -> None:
    class Machine(Replicas):
        def teardown(self) -> None:
            try:
                if self.cores:
                    self.check_final()
            finally:
                super().teardown()

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
