"""Merge rules: every case, including delete vs update both ways, equal stamps,
field-level merges, and the algebraic laws (idempotent, commutative, associative)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataferry.records import merge
from dataferry.records.merge import Field, State

A, B, C = "a-instance", "b-instance", "c-instance"


def doc(state: State) -> dict[str, Any]:
    return state.data()


def created(data: dict[str, Any], t: int, origin: str = A) -> State:
    s = merge.put(None, data, (t, origin))
    assert s is not None
    return s


def test_put_creates_every_field_with_the_stamp() -> None:
    s = created({"x": 1, "y": 2}, 10)
    assert doc(s) == {"x": 1, "y": 2}
    assert {f.stamp for f in s.fields.values()} == {(10, A)}
    assert not s.deleted and s.last() == (10, A)


def test_put_stamps_only_changed_fields_and_removes_missing_ones() -> None:
    s0 = created({"x": 1, "y": 2, "z": 3}, 10)
    s1 = merge.put(s0, {"x": 1, "y": 20}, (11, A))
    assert s1 is not None
    assert s1.fields["x"].stamp == (10, A)
    assert s1.fields["y"] == Field((11, A), True, 20, (10, A))
    assert s1.fields["z"] == Field((11, A), False, None, (10, A))
    assert doc(s1) == {"x": 1, "y": 20}


def test_put_of_the_same_document_changes_nothing() -> None:
    s0 = created({"x": 1}, 10)
    assert merge.put(s0, {"x": 1}, (11, A)) is None


def test_different_fields_edited_on_two_instances_both_survive() -> None:
    base = created({"x": 1, "y": 1}, 10)
    on_a = merge.put(base, {"x": 2, "y": 1}, (20, A))
    on_b = merge.put(base, {"x": 1, "y": 3}, (15, B))
    assert on_a and on_b
    ab, conflicts_ab = merge.merge(on_a, on_b)
    ba, conflicts_ba = merge.merge(on_b, on_a)
    assert doc(ab) == doc(ba) == {"x": 2, "y": 3}
    assert ab == ba
    assert conflicts_ab == conflicts_ba == []  # each edit replaced what its writer saw


def test_same_field_concurrent_edits_later_stamp_wins_and_the_loser_is_logged() -> None:
    base = created({"x": 1}, 10)
    on_a = merge.put(base, {"x": "a"}, (20, A))
    on_b = merge.put(base, {"x": "b"}, (30, B))
    assert on_a and on_b
    result, conflicts = merge.merge(on_a, on_b)
    assert doc(result) == {"x": "b"}
    assert conflicts == [merge.Conflict("field", "x", "a", (20, A), "b", (30, B))]
    result2, conflicts2 = merge.merge(on_b, on_a)
    assert result2 == result
    assert conflicts2 == conflicts  # the same loser, whichever side merges


def test_equal_clock_ties_break_on_origin_id() -> None:
    base = created({"x": 1}, 10)
    on_a = merge.put(base, {"x": "a"}, (20, A))
    on_b = merge.put(base, {"x": "b"}, (20, B))
    assert on_a and on_b
    assert doc(merge.merge(on_a, on_b)[0]) == {"x": "b"}  # "b-instance" > "a-instance"
    assert doc(merge.merge(on_b, on_a)[0]) == {"x": "b"}


def test_an_edit_of_a_seen_value_is_not_a_conflict() -> None:
    base = created({"x": 1}, 10)
    later = merge.put(base, {"x": 2}, (20, B))
    assert later
    result, conflicts = merge.merge(base, later)
    assert doc(result) == {"x": 2} and conflicts == []


def test_delete_hides_the_record_and_keeps_the_values() -> None:
    s0 = created({"x": 1}, 10)
    s1 = merge.delete(s0, (11, A))
    assert s1 is not None and s1.deleted
    assert doc(s1) == {"x": 1}  # the tombstone keeps its last values for audit
    assert merge.delete(s1, (12, A)) is None  # already deleted


def test_delete_wins_over_an_earlier_update() -> None:
    base = created({"x": 1}, 10)
    upd = merge.put(base, {"x": 2}, (20, B))
    dele = merge.delete(base, (30, A))
    assert upd and dele
    for result, _ in (merge.merge(upd, dele), merge.merge(dele, upd)):
        assert result.deleted
        assert doc(result) == {"x": 2}


def test_update_after_delete_wins_both_ways() -> None:
    base = created({"x": 1}, 10)
    dele = merge.delete(base, (20, A))
    upd = merge.put(base, {"x": 2}, (30, B))  # B had not seen the delete
    assert upd and dele
    r1, c1 = merge.merge(dele, upd)  # at A: the update arrives
    r2, c2 = merge.merge(upd, dele)  # at B: the delete arrives
    assert r1 == r2
    assert not r1.deleted and doc(r1) == {"x": 2}
    assert [c.kind for c in c1] == ["delete"]  # the delete that lost is logged at A
    assert [c.kind for c in c2] == ["delete"]  # and at B


def test_concurrent_update_hidden_by_a_later_delete_is_logged() -> None:
    base = created({"x": 1}, 10)
    upd = merge.put(base, {"x": 2}, (20, B))
    dele = merge.delete(base, (30, A))  # A had not seen the update
    assert upd and dele
    r1, c1 = merge.merge(upd, dele)
    assert r1.deleted
    assert c1 == [merge.Conflict("hidden", "x", 2, (20, B), None, (30, A))]
    r2, c2 = merge.merge(dele, upd)
    assert r2 == r1 and [c.kind for c in c2] == ["hidden"]


def test_recreating_a_deleted_record_deliberately_is_not_a_conflict() -> None:
    base = created({"x": 1}, 10)
    dele = merge.delete(base, (20, A))
    assert dele
    again = merge.put(dele, {"x": 1}, (30, B))  # B saw the delete and writes the record again
    assert again is not None and not again.deleted
    assert all(f.base == (20, A) for f in again.fields.values())
    result, conflicts = merge.merge(dele, again)
    assert not result.deleted and conflicts == []


def test_equal_delete_and_update_stamps_are_ordered_by_origin() -> None:
    base = created({"x": 1}, 10)
    dele = merge.delete(base, (20, B))
    upd = merge.put(base, {"x": 2}, (20, A))
    assert upd and dele
    assert merge.merge(upd, dele)[0].deleted  # (20, B) > (20, A)
    assert merge.merge(dele, upd)[0].deleted


def test_merge_with_nothing_local_takes_the_incoming_state() -> None:
    s = created({"x": 1}, 10)
    assert merge.merge(None, s) == (s, [])


def test_merging_the_same_change_twice_changes_nothing() -> None:
    base = created({"x": 1}, 10)
    upd = merge.put(base, {"x": 2, "y": 3}, (20, B))
    assert upd
    once, _ = merge.merge(base, upd)
    twice, conflicts = merge.merge(once, upd)
    assert twice == once and conflicts == []


def test_meta_round_trip() -> None:
    base = created({"x": 1, "y": [1, 2]}, 10)
    s = merge.put(base, {"x": 2}, (20, B))
    assert s
    s = merge.delete(s, (30, C))
    assert s
    assert merge.decode(merge.encode_meta(s), s.data()) == s


@pytest.mark.parametrize(
    ("meta", "data", "message"),
    [
        ({"f": {"x": [1]}}, {"x": 1}, "list of 3 or 5"),
        ({"f": {"x": [-1, A, 1]}}, {"x": 1}, "non-negative"),
        ({"f": {"x": [1, "", 1]}}, {"x": 1}, "must be an instance id"),
        ({"f": {"x": [1, A, 1]}}, {}, "no value"),
        ({"f": {}}, {"y": 1}, "without stamps"),
        ({"f": {}}, {}, "at least one"),
        ({"f": {}, "d": [1]}, {}, "list of 2 or 4"),
        ({"f": []}, {}, "must be an object"),
        ({"f": {"x": [True, A, 1]}}, {"x": 1}, "non-negative"),
    ],
)
def test_decode_rejects_malformed_states(meta: Any, data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        merge.decode(meta, data)
    # the fast check used for records new to an instance is as strict
    with pytest.raises(ValueError, match=message):
        merge.inspect(meta, data)


@pytest.mark.parametrize(
    ("meta", "data", "message"),
    [
        ({"f": {"x": [1, A, 1]}, "g": 1}, {"x": 1}, "unknown keys"),
        ({"f": {"x": [1, A, 1, -2, B]}}, {"x": 1}, "non-negative"),
        ({"f": {"x": [1, A, 1, 2, 7]}}, {"x": 1}, "must be an instance id"),
        ({"f": {"x": [1, "o" * 65, 1]}}, {"x": 1}, "must be an instance id"),
        # the rule of a change's origin (records.model.check_origin): printable only
        ({"f": {"x": [1, "a\nb", 1]}}, {"x": 1}, "1-64 printable characters"),
        ({"f": {"x": [1, A, 1, 2, "b\x00"]}}, {"x": 1}, "1-64 printable characters"),
        ({"s": [1, "c\td"]}, {"x": 1}, "1-64 printable characters"),
        ({"f": {}, "d": [5, "e\u2028"]}, {}, "1-64 printable characters"),
        ({"f": {"x": (1, A, 1)}}, {"x": 1}, "list of 3 or 5"),
        ({"f": {"x": [1, A, 0]}}, {"x": 1}, "without stamps"),
        ({"f": {}, "d": [5, A, -1, A]}, {}, "non-negative"),
    ],
)
def test_inspect_rejects_malformed_states(meta: Any, data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        merge.inspect(meta, data)


# -- algebraic laws over random states ---------------------------------------------------

origins = st.sampled_from([A, B, C])
stamps = st.tuples(st.integers(1, 8), origins)
values = st.one_of(st.integers(0, 3), st.text(max_size=2), st.none())


@st.composite
def states(draw: st.DrawFn) -> State:
    """Random states where one stamp always carries one value (as in reality: a write
    is identified by its stamp)."""
    keys = draw(st.lists(st.sampled_from("xyz"), unique=True, max_size=3))
    fields = {}
    for k in keys:
        stamp = draw(stamps)
        present = draw(st.booleans())
        fields[k] = Field(stamp, present, hash((k, stamp)) % 5 if present else None)
    delete = draw(st.none() | stamps)
    if not fields and delete is None:
        delete = (1, A)
    return State(fields, delete, None)


@given(states(), states())
def test_merge_is_commutative(x: State, y: State) -> None:
    assert merge.merge(x, y)[0] == merge.merge(y, x)[0]


@given(states(), states(), states())
def test_merge_is_associative(x: State, y: State, z: State) -> None:
    left = merge.merge(merge.merge(x, y)[0], z)[0]
    right = merge.merge(x, merge.merge(y, z)[0])[0]
    assert left == right


@given(states(), states())
def test_merge_is_idempotent(x: State, y: State) -> None:
    once = merge.merge(x, y)[0]
    assert merge.merge(once, y)[0] == once
    assert merge.merge(x, x)[0] == x


@given(states(), states())
def test_each_field_takes_the_highest_stamp(x: State, y: State) -> None:
    result = merge.merge(x, y)[0]
    for key, f in result.fields.items():
        candidates = [s.fields[key].stamp for s in (x, y) if key in s.fields]
        assert f.stamp == max(candidates)


@given(states())
def test_inspect_agrees_with_decode(x: State) -> None:
    meta, data = merge.encode_meta(x), x.data()
    assert merge.inspect(meta, data) == (x.last(), x.deleted)
    assert merge.decode(meta, data) == x


# -- storage form --------------------------------------------------------------------


def test_a_record_written_at_once_stores_one_shared_stamp() -> None:
    s = created({"x": 1, "y": 2, "z": 3}, 10)
    assert merge.encode_meta(s) == {"s": [10, A]}
    assert merge.decode({"s": [10, A]}, s.data()) == s


def test_fields_off_the_shared_stamp_have_entries_of_their_own() -> None:
    s = merge.put(created({"x": 1, "y": 2, "z": 3}, 10), {"x": 1, "y": 5}, (20, B))
    assert s
    # y was edited (with the stamp it replaced), z removed; x keeps the shared stamp
    assert merge.encode_meta(s) == {
        "s": [10, A],
        "f": {"y": [20, B, 1, 10, A], "z": [20, B, 0, 10, A]},
    }
    assert merge.decode(merge.encode_meta(s), s.data()) == s


def test_the_storage_form_is_canonical() -> None:
    one = State({"a": Field((1, A), True, 1), "b": Field((2, B), True, 2)})
    other = State({"b": Field((2, B), True, 2), "a": Field((1, A), True, 1)})
    # a tie between shared stamps goes to the higher one; entries are sorted by field
    assert (
        merge.encode_meta(one) == merge.encode_meta(other) == {"s": [2, B], "f": {"a": [1, A, 1]}}
    )
    assert list(
        merge.encode_meta(State({"b": Field((1, A), False), "a": Field((1, A), False)}))["f"]
    ) == ["a", "b"]


def test_the_older_form_with_an_entry_per_field_still_reads() -> None:
    s = merge.put(created({"x": 1, "y": 2}, 10), {"x": 1, "y": 5}, (20, B))
    assert s
    older = {"f": {"x": [10, A, 1], "y": [20, B, 1, 10, A]}}
    assert merge.decode(older, s.data()) == s
    assert merge.inspect(older, s.data()) == ((20, B), False)


@pytest.mark.parametrize(
    ("meta", "data", "message"),
    [
        ({"s": [1]}, {"x": 1}, "list of 2"),
        ({"s": (1, A)}, {"x": 1}, "list of 2"),
        ({"s": [1, ""]}, {"x": 1}, "must be an instance id"),
        ({"s": [-1, A]}, {"x": 1}, "non-negative"),
        ({"s": [1, A]}, {}, "stamps no field"),
        ({"s": [1, A], "f": {"x": [2, B, 1]}}, {"x": 1}, "stamps no field"),
        ({"s": [1, A], "f": {"x": [2, B, 0]}}, {"x": 1, "y": 2}, "marked removed"),
        ({"s": [1, A], "f": {"x": [2, B, 1]}}, {"y": 2}, "no value"),
    ],
)
def test_a_malformed_shared_stamp_is_refused(meta: Any, data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        merge.decode(meta, data)
    with pytest.raises(ValueError, match=message):
        merge.inspect(meta, data)


@st.composite
def states_with_bases(draw: st.DrawFn) -> State:
    keys = draw(st.lists(st.sampled_from("uvwxyz"), unique=True, max_size=6))
    fields = {
        k: Field(s, p, k if p else None, draw(st.none() | stamps))
        for k in keys
        for s, p in [(draw(stamps), draw(st.booleans()))]
    }
    delete = draw(st.none() | stamps)
    if not fields and delete is None:
        delete = (1, A)
    return State(fields, delete, draw(st.none() | stamps) if delete else None)


@given(states_with_bases())
def test_every_state_round_trips_through_the_storage_form(x: State) -> None:
    meta = merge.encode_meta(x)
    text = json.dumps(meta)
    assert merge.decode(json.loads(text), x.data()) == x
    assert merge.inspect(json.loads(text), x.data()) == (x.last(), x.deleted)
    # one text per state, whatever order its fields came in
    backwards = State(dict(reversed(list(x.fields.items()))), x.delete, x.delete_base)
    assert json.dumps(merge.encode_meta(backwards)) == text
