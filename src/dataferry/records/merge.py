"""Merge rules for replicated records (pure: no I/O, exhaustively unit-tested).

A record's state is a set of fields, each a last-writer-wins register stamped
``(hlc, origin)``, plus an optional delete stamp. Stamps order totally: first by
the hybrid logical clock, then by origin instance id (a plain string
comparison), so every instance picks the same winner.

Rules (see ``docs/replication.md``):

1. Per field, the higher stamp wins. Two instances that edit different fields
   of one record both keep their edits.
2. A record is deleted when its delete stamp is higher than every field stamp:
   a delete removes the record unless the other side updated it after the
   delete (a later stamp), in which case the update wins.
3. Merging is idempotent, commutative and associative: applying the same
   change twice, or changes in another order, gives the same state.
4. A value that loses to a concurrent value (one whose writer had not seen
   it) is reported as a :class:`Conflict` for the conflict log. Each field
   write remembers the stamp it replaced (its *base*); a loser that is the
   winner's base was simply edited, not lost. Deletes remember the highest
   field stamp they saw, likewise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dataferry.records.model import MAX_ORIGIN, is_origin

Stamp = tuple[int, str]  # (hlc, origin instance id)


@dataclass(frozen=True, slots=True)
class Field:
    stamp: Stamp
    present: bool  # False: the field was removed (a field tombstone)
    value: Any = None
    base: Stamp | None = None  # the stamp this write replaced


@dataclass(frozen=True)
class State:
    fields: Mapping[str, Field] = field(default_factory=dict)
    delete: Stamp | None = None
    delete_base: Stamp | None = None  # highest field stamp the deleter had seen

    def field_max(self) -> Stamp | None:
        return max((f.stamp for f in self.fields.values()), default=None)

    @property
    def deleted(self) -> bool:
        if self.delete is None:
            return False
        top = self.field_max()
        return top is None or self.delete > top

    def last(self) -> Stamp:
        """The stamp of the latest change (fields or delete)."""
        stamps = [f.stamp for f in self.fields.values()]
        if self.delete is not None:
            stamps.append(self.delete)
        return max(stamps)

    def data(self) -> dict[str, Any]:
        """The document: present fields (a tombstone keeps its last values, for audit)."""
        return {k: f.value for k, f in sorted(self.fields.items()) if f.present}


@dataclass(frozen=True, slots=True)
class Conflict:
    """A value that lost to a concurrent one.

    ``kind``: ``field`` (a field value overwritten by a concurrent write),
    ``delete`` (a delete undone by a later update), or ``hidden`` (an update
    that a later, concurrent delete hid; the value stays in the tombstone)."""

    kind: str
    field: str
    lost: Any
    lost_stamp: Stamp
    won: Any
    won_stamp: Stamp


def put(current: State | None, doc: Mapping[str, Any], stamp: Stamp) -> State | None:
    """A local write of the whole document ``doc``; None if nothing changes.

    Only fields whose value changed get the new stamp (so a peer's edit of
    another field survives); fields missing from ``doc`` are removed. Writing
    over a tombstone restamps every field, which brings the record back."""
    if current is None:
        return State({k: Field(stamp, True, v) for k, v in doc.items()})
    revive = current.deleted
    fields: dict[str, Field] = dict(current.fields)
    changed = False
    for key, value in doc.items():
        old = fields.get(key)
        if old is not None and old.present and old.value == value and not revive:
            continue
        base = current.delete if revive else (old.stamp if old else None)
        fields[key] = Field(stamp, True, value, base)
        changed = True
    for key, old in current.fields.items():
        if key not in doc and old.present:
            fields[key] = Field(stamp, False, None, current.delete if revive else old.stamp)
            changed = True
    if not changed:
        return None
    return State(fields, current.delete, current.delete_base)


def delete(current: State, stamp: Stamp) -> State | None:
    """A local delete; None if the record is already deleted."""
    if current.deleted:
        return None
    return State(current.fields, stamp, current.field_max())


def merge(local: State | None, incoming: State) -> tuple[State, list[Conflict]]:
    """Merge a peer's state of a record into ours; returns the result and what lost."""
    if local is None:
        return incoming, []
    conflicts: list[Conflict] = []
    fields: dict[str, Field] = {}
    for key in sorted(set(local.fields) | set(incoming.fields)):
        a, b = local.fields.get(key), incoming.fields.get(key)
        if a is None or b is None:
            chosen = a or b
            assert chosen is not None
            fields[key] = chosen
            continue
        if a.stamp == b.stamp:
            # The same write; should two ever differ (a faulty peer), pick one
            # deterministically so every instance still converges.
            fields[key] = a if a == b or _tiebreak(a) >= _tiebreak(b) else b
            continue
        won, lost = (a, b) if a.stamp > b.stamp else (b, a)
        fields[key] = won
        same = won.present == lost.present and (not won.present or won.value == lost.value)
        if won.base != lost.stamp and not same:
            conflicts.append(
                Conflict(
                    "field",
                    key,
                    lost.value if lost.present else None,
                    lost.stamp,
                    won.value if won.present else None,
                    won.stamp,
                )
            )
    dstamp: Stamp | None
    if incoming.delete is not None and (local.delete is None or incoming.delete > local.delete):
        dstamp, dbase = incoming.delete, incoming.delete_base
    elif incoming.delete is not None and incoming.delete == local.delete:
        bases = [b for b in (local.delete_base, incoming.delete_base) if b is not None]
        dstamp, dbase = local.delete, max(bases, default=None)
    else:
        dstamp, dbase = local.delete, local.delete_base
    result = State(fields, dstamp, dbase)
    if dstamp is not None:
        conflicts.extend(_delete_conflicts(local, result, dstamp, dbase))
    return result, conflicts


def _tiebreak(f: Field) -> tuple[bool, str, Stamp]:
    return (f.present, json.dumps(f.value, sort_keys=True, default=str), f.base or (0, ""))


def _delete_conflicts(
    local: State, result: State, dstamp: Stamp, dbase: Stamp | None
) -> list[Conflict]:
    out: list[Conflict] = []
    if result.deleted:
        # Updates the deleter had not seen, now hidden by the delete: report each
        # once, where the delete first meets them.
        for key, f in result.fields.items():
            if not (dbase is None or f.stamp > dbase):
                continue
            mine = local.fields.get(key)
            already_hidden = local.delete == dstamp and mine is not None and mine.stamp == f.stamp
            if not already_hidden:
                out.append(
                    Conflict("hidden", key, f.value if f.present else None, f.stamp, None, dstamp)
                )
        return out
    # The delete lost to a later update. Reported unless the update was made by
    # someone who saw the delete (a deliberate re-creation: its base is the delete).
    if any(f.base == dstamp for f in result.fields.values()):
        return out
    if local.delete == dstamp and not local.deleted:
        return out  # already alive here with this delete: reported before
    top = max(result.fields.items(), key=lambda kv: kv[1].stamp)
    out.append(Conflict("delete", top[0], None, dstamp, top[1].value, top[1].stamp))
    return out


# -- storage form -----------------------------------------------------------------


def encode_meta(state: State) -> dict[str, Any]:
    """The stamps as JSON (values live in the document column).

    ``{"s": [hlc, origin], "f": {field: entry}, "d": delete}``: ``s`` is the stamp
    most present fields share (usually all of them: a record written at once), and
    those fields need no entry of their own; ``f`` holds the others, each
    ``[hlc, origin, present, base hlc, base origin]`` (the base only if known);
    ``d`` is the delete stamp and its base. Each part is left out when empty. The
    form is canonical (one text per state), which echo digests rely on."""
    common = _commonest(state)
    f = {
        key: _field_entry(fld)
        for key, fld in sorted(state.fields.items())
        if not (fld.stamp == common and fld.present and fld.base is None)
    }
    meta: dict[str, Any] = {}
    if common is not None:
        meta["s"] = [common[0], common[1]]
    if f or (common is None and state.delete is None):
        meta["f"] = f
    if state.delete is not None:
        meta["d"] = _delete_entry(state)
    return meta


def encode_meta_v1(state: State) -> dict[str, Any]:
    """The stamps in the form of replication protocol 1 (for peers that speak only
    it): an entry for every field, no shared stamp."""
    meta: dict[str, Any] = {
        "f": {key: _field_entry(fld) for key, fld in sorted(state.fields.items())}
    }
    if state.delete is not None:
        meta["d"] = _delete_entry(state)
    return meta


def _field_entry(fld: Field) -> list[Any]:
    """``[hlc, origin, present(1/0)]``, plus ``[base hlc, base origin]`` if known."""
    entry: list[Any] = [fld.stamp[0], fld.stamp[1], 1 if fld.present else 0]
    if fld.base is not None:
        entry += [fld.base[0], fld.base[1]]
    return entry


def _delete_entry(state: State) -> list[Any]:
    """``[hlc, origin]`` of the delete, plus its base if known (``state.delete`` is set)."""
    assert state.delete is not None
    d: list[Any] = [state.delete[0], state.delete[1]]
    if state.delete_base is not None:
        d += [state.delete_base[0], state.delete_base[1]]
    return d


def _commonest(state: State) -> Stamp | None:
    """The stamp most plain fields (present, no base) share; ties: the higher."""
    counts: dict[Stamp, int] = {}
    for fld in state.fields.values():
        if fld.present and fld.base is None:
            counts[fld.stamp] = counts.get(fld.stamp, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda st: (counts[st], st))


def decode(meta: Mapping[str, Any], data: Mapping[str, Any]) -> State:
    """Rebuild a state from its stamps and document; raises ValueError if malformed.
    Reads the form :func:`encode_meta` writes and the older one without ``s``
    (every field with an entry)."""
    try:
        fields: dict[str, Field] = {}
        raw_fields = meta.get("f", {})
        if not isinstance(raw_fields, Mapping):
            raise ValueError("'f' must be an object")
        for key, e in raw_fields.items():
            if not isinstance(e, list) or len(e) not in (3, 5):
                raise ValueError(f"field {key!r}: stamp entry must be a list of 3 or 5")
            stamp = _stamp(e[0], e[1])
            present = bool(e[2])
            if present and key not in data:
                raise ValueError(f"field {key!r} is present but has no value")
            base = _stamp(e[3], e[4]) if len(e) == 5 else None
            fields[key] = Field(stamp, present, data.get(key) if present else None, base)
        shared = _shared_stamp(meta)
        used = False
        for key in data:
            if key not in fields:
                if shared is None:
                    raise ValueError(f"fields without stamps: {sorted(set(data) - set(fields))}")
                fields[key] = Field(shared, True, data[key])
                used = True
            elif not fields[key].present:
                raise ValueError(f"field {key!r} has a value but is marked removed")
        if shared is not None and not used:
            raise ValueError("'s' stamps no field")
        d = meta.get("d")
        dstamp = dbase = None
        if d is not None:
            if not isinstance(d, list) or len(d) not in (2, 4):
                raise ValueError("'d' must be a list of 2 or 4")
            dstamp = _stamp(d[0], d[1])
            dbase = _stamp(d[2], d[3]) if len(d) == 4 else None
        if not fields and dstamp is None:
            raise ValueError("a record needs at least one field or a delete stamp")
        return State(fields, dstamp, dbase)
    except (TypeError, AttributeError) as exc:
        raise ValueError(f"malformed record state: {exc}") from exc


def _shared_stamp(meta: Mapping[str, Any]) -> Stamp | None:
    s = meta.get("s")
    if s is None:
        return None
    if type(s) is not list or len(s) != 2:
        raise ValueError("'s' must be a list of 2")
    return _stamp(s[0], s[1])


def inspect(meta: Mapping[str, Any], data: Mapping[str, Any]) -> tuple[Stamp, bool]:
    """Check a stored or received state as strictly as :func:`decode`, without
    building it: returns (stamp of the last change, deleted). The fast path for
    records new to this instance (it runs once per received record, so the
    checks of :func:`_stamp` are inlined; a failing one calls it for the message)."""
    if not isinstance(meta, Mapping) or not isinstance(data, Mapping):
        raise ValueError("meta and data must be objects")
    for k in meta:
        if k != "f" and k != "d" and k != "s":
            raise ValueError(f"unknown keys in meta: {sorted(set(meta) - {'f', 'd', 's'})}")
    raw_fields = meta.get("f", {})
    if not isinstance(raw_fields, Mapping):
        raise ValueError("'f' must be an object")
    top_hlc = -1
    top_origin = ""
    present = 0
    for key, e in raw_fields.items():
        if type(e) is not list:
            raise ValueError(f"field {key!r}: stamp entry must be a list of 3 or 5")
        n = len(e)
        if n == 3:
            h, o, p = e
        elif n == 5:
            h, o, p, bh, bo = e
            if (
                type(bh) is not int
                or bh < 0
                or type(bo) is not str
                or not 0 < len(bo) <= MAX_ORIGIN
                or not bo.isprintable()
            ):
                _stamp(bh, bo)
        else:
            raise ValueError(f"field {key!r}: stamp entry must be a list of 3 or 5")
        if (
            type(h) is not int
            or h < 0
            or type(o) is not str
            or not 0 < len(o) <= MAX_ORIGIN
            or not o.isprintable()
        ):
            _stamp(h, o)
        if (type(p) is not int and type(p) is not bool) or (p != 1 and p != 0):
            raise ValueError(f"field {key!r}: present must be 1 or 0, not {p!r}")
        if p:
            present += 1
            if key not in data:
                raise ValueError(f"field {key!r} is present but has no value")
        if h > top_hlc or (h == top_hlc and o > top_origin):
            top_hlc, top_origin = h, o
    if "s" in meta:
        h, o = _shared_stamp(meta)  # type: ignore[misc]
        if present == len(data):  # every field has its own entry
            raise ValueError("'s' stamps no field")
        for key in data if raw_fields else ():
            e = raw_fields.get(key)
            if e is not None and not e[2]:
                raise ValueError(f"field {key!r} has a value but is marked removed")
        if h > top_hlc or (h == top_hlc and o > top_origin):
            top_hlc, top_origin = h, o
    elif present != len(data):
        extra = set(data) - {k for k, e in raw_fields.items() if e[2]}
        raise ValueError(f"fields without stamps: {sorted(extra)}")
    top: Stamp | None = (top_hlc, top_origin) if top_hlc >= 0 else None
    d = meta.get("d")
    if d is not None:
        if type(d) is not list or len(d) not in (2, 4):
            raise ValueError("'d' must be a list of 2 or 4")
        dstamp = _stamp(d[0], d[1])
        if len(d) == 4:
            _stamp(d[2], d[3])
        deleted = top is None or dstamp > top
        return (dstamp if deleted else top), deleted  # type: ignore[return-value]
    if top is None:
        raise ValueError("a record needs at least one field or a delete stamp")
    return top, False


def _stamp(hlc: Any, origin: Any) -> Stamp:
    if type(hlc) is not int or hlc < 0:
        raise ValueError(f"stamp clock {hlc!r} must be a non-negative integer")
    if not is_origin(origin):  # the rule of a change's origin (records.model)
        raise ValueError(
            f"stamp origin {origin!r:.80} must be an instance id, "
            f"1-{MAX_ORIGIN} printable characters"
        )
    return (hlc, origin)
