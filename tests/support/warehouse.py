"""A warehouse model with target-postgres semantics, fed the tap's Singer messages.

Small on purpose: it is the judge of the soak test (tests/e2e/test_soak.py), so it must be
obviously right. What it models, per stream:

* a table keyed by the ``key_properties`` of the stream's SCHEMA message;
* RECORD = upsert: the row is replaced by the record, with the message's ``version``
  (``_sdc_table_version``; None when the message carries none). A retired row that is
  upserted again is live again (target-postgres writes ``_sdc_deleted_at`` = null);
* ACTIVATE_VERSION ``{stream, version}`` = every live row of that stream whose version
  is not null and below ``version`` is retired (soft delete). A row without a version
  is never retired (in SQL, ``NULL < version`` is not true);
* STATE = the last value is kept.

A run killed with SIGKILL may leave its last line cut short: :meth:`Warehouse.load`
ignores a last line without its newline. Any other line that is not a JSON object, and a
RECORD for a stream whose SCHEMA never came, raise :class:`BadOutput`.

>>> w = Warehouse()
>>> _ = w.apply({"type": "SCHEMA", "stream": "s", "schema": {}, "key_properties": ["id"]})
>>> _ = w.apply({"type": "RECORD", "stream": "s", "record": {"id": "a"}, "version": 1})
>>> _ = w.apply({"type": "RECORD", "stream": "s", "record": {"id": "b"}})
>>> [row.key for row in w.apply({"type": "ACTIVATE_VERSION", "stream": "s", "version": 2})]
[('a',)]
>>> sorted(w.live("s"))
[('b',)]
"""

from __future__ import annotations

import json
import typing as t
from dataclasses import dataclass, field
from decimal import Decimal

Key = tuple[t.Any, ...]


class BadOutput(ValueError):
    """The tap wrote something a target could not load."""


@dataclass
class Row:
    """One row of a table: the record as last upserted, its version, and whether retired."""

    key: Key
    record: dict[str, t.Any]
    version: int | None
    #: The version whose ACTIVATE_VERSION retired the row (None: the row is live).
    retired_by: int | None = None

    @property
    def retired(self) -> bool:
        return self.retired_by is not None


@dataclass
class Table:
    key_properties: tuple[str, ...]
    rows: dict[Key, Row] = field(default_factory=dict)

    def key_of(self, record: dict[str, t.Any]) -> Key:
        return tuple(record.get(name) for name in self.key_properties)


@dataclass
class Retirement:
    """A row an ACTIVATE_VERSION retired (the judge checks it no longer exists at the source)."""

    stream: str
    key: Key
    record: dict[str, t.Any]
    version: int | None
    activated: int


@dataclass
class Loaded:
    """What one run's output did to the warehouse."""

    messages: int = 0
    torn_last_line: bool = False
    retirements: list[Retirement] = field(default_factory=list)
    activations: list[tuple[str, int]] = field(default_factory=list)
    last_state: dict[str, t.Any] | None = None


class Warehouse:
    """Every table, plus the last STATE value the target would hand back."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}
        self.state: dict[str, t.Any] | None = None

    def apply(self, message: dict[str, t.Any]) -> list[Retirement]:
        """Apply one parsed Singer message; return the rows it retired."""
        kind = message.get("type")
        stream = message.get("stream")
        if kind == "SCHEMA":
            keys = tuple(message.get("key_properties") or ())
            table = self.tables.get(stream)  # type: ignore[arg-type]
            if table is None:
                self.tables[str(stream)] = Table(keys)
            elif table.key_properties != keys:
                raise BadOutput(f"{stream}: key_properties changed from {table.key_properties}")
        elif kind == "RECORD":
            table = self._table(stream)
            record = message["record"]
            key = table.key_of(record)
            table.rows[key] = Row(key, record, message.get("version"))
        elif kind == "ACTIVATE_VERSION":
            return self._activate(self._table(stream), str(stream), int(message["version"]))
        elif kind == "STATE":
            self.state = message["value"]
        else:
            raise BadOutput(f"unknown message type {kind!r}")
        return []

    def _table(self, stream: t.Any) -> Table:
        table = self.tables.get(stream)
        if table is None:
            raise BadOutput(f"a message for stream {stream!r} before its SCHEMA")
        return table

    @staticmethod
    def _activate(table: Table, stream: str, version: int) -> list[Retirement]:
        retired = []
        for row in table.rows.values():
            if not row.retired and row.version is not None and row.version < version:
                row.retired_by = version
                retired.append(Retirement(stream, row.key, row.record, row.version, version))
        return retired

    def load(self, text: str) -> Loaded:
        """Apply one run's stdout; a last line cut short (no newline) is ignored."""
        loaded = Loaded()
        lines = text.split("\n")
        if lines and lines[-1] != "":
            loaded.torn_last_line = True
        for number, line in enumerate(lines[:-1], start=1):
            if not line.strip():
                continue
            try:
                message = json.loads(line, parse_float=Decimal)
            except ValueError:
                raise BadOutput(f"line {number} is not JSON: {line[:120]!r}") from None
            if not isinstance(message, dict):
                raise BadOutput(f"line {number} is not a JSON object: {line[:120]!r}")
            loaded.messages += 1
            loaded.retirements += self.apply(message)
            if message["type"] == "ACTIVATE_VERSION":
                loaded.activations.append((message["stream"], int(message["version"])))
            elif message["type"] == "STATE":
                loaded.last_state = message["value"]
        return loaded

    def live(self, stream: str) -> dict[Key, Row]:
        """The live rows of ``stream`` by key (none if its SCHEMA never came)."""
        table = self.tables.get(stream)
        if table is None:
            return {}
        return {key: row for key, row in table.rows.items() if not row.retired}

    def row(self, stream: str, key: Key) -> Row | None:
        table = self.tables.get(stream)
        return None if table is None else table.rows.get(key)
