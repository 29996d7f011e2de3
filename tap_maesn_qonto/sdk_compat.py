"""Every place the tap leans on singer-sdk beyond its public hooks, and why.

Each seam names what it waits for upstream; tests/test_sdk_contract.py imports this
module (and the tap) only, and fails if the SDK changes what a seam relies on.

1. ``Stream._write_record_message`` (:class:`PlainRecordMessages`): without stream
   maps, flattening or deselected properties, the SDK's per-record work changes nothing
   in a record this tap already shaped to its schema (shaping.py), so the RECORD message
   is written directly: about a third of the tap's CPU per record at 0 ms latency.
   Anything configured takes the SDK's own path. Waits for a public per-record
   emission hook (no upstream issue yet; meltano/sdk#1963 discusses the pipeline).
2. ``Stream._increment_stream_state`` (:class:`PlainRecordMessages`): a stream whose
   reads own their bookmark (read.py) sets the partition's bookmark to what its read
   says is resumable, instead of the record's value, written as the SDK's private
   ``helpers._state.increment_state`` writes it (:func:`write_bookmark`). Waits for a
   state hook that receives the stream's own bookmark (meltano/sdk#2753 asks for
   value handling).
3. ``StreamStateManager.is_flushed`` (written as the SDK's own method does after a
   record: a STATE is due).
4. ``Stream._stream_version`` (:func:`carry_version`): RECORD messages carry a
   reconcile's table version on incremental streams; the SDK sets it only for its own
   FULL_TABLE activation. Waits for a public version setter.
5. ``StreamStateManager.get_context_state`` (:func:`partition_states`): the SDK
   finds a partition's state by scanning every partition, per record: quadratic in
   accounts. Replaced on the manager (a private type, ``streams._state``) by a lookup
   through an index of the dicts the SDK's own lookup returned. A reconcile also needs
   the partitions of accounts no longer configured, which no public method lists: they
   are read from the stream state's ``partitions`` list. Waits for an O(1) lookup and a
   partition listing upstream.
6. ``PluginBase._setup_signal_handlers`` (:class:`SignalsOfTheRun`): the SDK's handler
   exits 0 on SIGTERM ("Gracefully shutting down"), an orchestrator's cancel read as
   success; the tap installs its own, which stops the run with 143 (or 130), from the
   moment the tap exists. Waits for a non-zero exit on termination upstream.
7. ``PluginBase._validate_config`` and ``PluginBase._config`` (:class:`CheckedConfig`):
   the SDK checks types and required keys; the tap first gives settings their Python
   types (a JSON file's 1.25 is a Decimal, Meltano's "1.25" text), then checks formats,
   typos and accounts at the same moment (before state and catalog are read), and
   rewrites jsonschema's messages, which quote values, so that no secret is shown.
   Waits for a public config hook.
9. ``PluginBase._env_var_config`` and ``singer_sdk.configuration._dict_config.
   parse_environment_config`` (:class:`CheckedConfig`): ``--config ENV`` reads boolean,
   integer and number settings as text, for the tap to type (the SDK's ``int("abc")`` is
   a traceback, its "flase" silently false, its "1.25" a string). Waits for typed
   environment settings upstream.
8. ``Tap.sync_all`` is wrapped (:class:`WrappedSync`): final in the SDK, and the one place
   the outcome of the whole run is known in process. The tap fills the hooks before,
   after and on failure (meltano/sdk#2121 would add run hooks).
"""

from __future__ import annotations

import typing as t
from functools import cached_property, partial

from singer_sdk import Stream, Tap
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.mapper import SameRecordTransform

from tap_maesn_qonto import numbers
from tap_maesn_qonto.output import BufferedSingerWriter, write_record_message

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from singer_sdk.helpers.types import Context


class PlainRecordMessages(Stream):
    """A stream whose RECORD messages skip the SDK's no-op per-record work (seams 1-3)."""

    #: The version RECORD messages carry (reconcile.py).
    table_version: int | None = None
    #: Whether the stream's reads set its partitions' bookmarks (seam 2).
    reads_own_bookmarks: t.ClassVar[bool] = False

    def __init__(self, tap: Tap, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(tap, *args, **kwargs)
        self._writing_tap = tap

    @cached_property
    def records_need_the_sdk(self) -> bool:
        """A stream map, flattening or a deselected property is configured."""
        maps = self.stream_maps
        return not (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
            and maps[0].stream_alias == self.name
            and all(self.mask.values())
        )

    def write_record(self, record: dict) -> None:
        """Write one RECORD message now, as the SDK's sync would (seam 1)."""
        self._write_record_message(record)

    def write_message(self, message: t.Any) -> None:
        """Write any Singer message through the tap's writer (an ACTIVATE_VERSION)."""
        self._writing_tap.write_message(message)

    def bookmark_after_record(self, record: dict, context: Context | None) -> None:
        """Set the partition's bookmark after ``record`` was written (reads that own it)."""

    def _increment_stream_state(self, latest_record: dict, *, context: t.Any = None) -> None:
        if self.reads_own_bookmarks:
            self.bookmark_after_record(latest_record, context)
        else:
            super()._increment_stream_state(latest_record, context=context)

    def _write_record_message(self, record: dict) -> None:
        if self.records_need_the_sdk:
            super()._write_record_message(record)
            return
        self._write_record(self.name, record, self.table_version)
        self.state_manager.is_flushed = False  # as in the SDK's method: a STATE is due

    @cached_property
    def _write_record(self) -> Callable[[str, dict, int | None], None]:
        """The tap's own writer's RECORD path, or any other writer's through a message."""
        writer = self._writing_tap.message_writer  # read late: it may not exist at __init__
        if isinstance(writer, BufferedSingerWriter):
            return writer.write_record
        if isinstance(writer, MsgSpecWriter):  # writes numbers kept as text verbatim
            return partial(write_record_message, writer)
        return lambda stream, record, version: write_record_message(
            writer, stream, numbers.with_decimals(record), version
        )


def carry_version(stream: PlainRecordMessages, version: int | None) -> None:
    """Have the RECORD messages of ``stream`` carry ``version``, on either path (seam 4)."""
    stream.table_version = version
    stream._stream_version = version


#: Where the SDK keeps a partition's bookmark (``helpers._state.increment_state``).
BOOKMARK_KEY, BOOKMARK_VALUE = "replication_key", "replication_key_value"


def write_bookmark(state: dict[str, t.Any], key: str, value: str | None) -> None:
    """Set (or, with None, drop) a partition's bookmark where the SDK keeps it (seam 2)."""
    if value is None:
        state.pop(BOOKMARK_VALUE, None)
        state.pop(BOOKMARK_KEY, None)
    elif state.get(BOOKMARK_VALUE) != value:
        state[BOOKMARK_KEY] = key
        state[BOOKMARK_VALUE] = value


def partition_states(stream: Stream, key: str) -> dict[str, dict[str, t.Any]]:
    """Every partition state of ``stream`` by its context's ``key``: those the state holds
    (configured now or not), and the live dicts of the stream's own partitions (seam 5)."""
    index_partition_lookups(stream.state_manager)
    states = {
        str(p["context"].get(key)): p
        for p in stream.stream_state.get("partitions", [])
        if isinstance(p.get("context"), dict)
    }
    for context in stream.partitions or []:
        states[str(context[key])] = stream.get_context_state(context)
    return states


def index_partition_lookups(manager: t.Any) -> None:
    """Make ``manager.get_context_state`` a dictionary lookup after each context's first.

    The index holds the dicts the SDK's own lookup returned, keyed by the partition
    context and checked against the partition list they came from (a state replaced as
    a whole is looked up afresh). It changes no state (seam 5).
    """
    if getattr(manager, "indexed_partition_lookups", False):
        return
    find: Callable[[Context | None], dict] = manager.get_context_state  # the SDK's own
    found: dict[tuple, tuple[list | None, dict]] = {}

    def partitions() -> list | None:
        bookmarks = manager.tap_state.get("bookmarks") or {}
        return (bookmarks.get(manager.stream_name) or {}).get("partitions")

    def get_context_state(context: Context | None) -> dict:
        if not context:
            return find(context)
        key = tuple(sorted(context.items()))
        current = partitions()
        hit = found.get(key)
        if hit is not None and hit[0] is current:
            return hit[1]
        state = find(context)
        found[key] = (partitions(), state)  # the list may have been created just now
        return state

    manager.get_context_state = get_context_state
    manager.indexed_partition_lookups = True


class WrappedSync(Tap):
    """``sync_all`` with the tap's hooks around the SDK's own (seam 8)."""

    def before_sync(self) -> None:
        """Before any stream is synced."""

    def after_sync(self, error: BaseException | None) -> None:
        """After the SDK's sync, whether it ended (``error`` None) or raised ``error``."""

    def sync_all(self) -> None:  # type: ignore[misc]  # final in the SDK: wrapped, not replaced
        self.before_sync()
        try:
            super().sync_all()
        except BaseException as exc:
            self.after_sync(exc)
            raise
        self.after_sync(None)


class SignalsOfTheRun(Tap):
    """The tap's own SIGINT/SIGTERM handling from the moment it exists (seam 6)."""

    def install_signal_handlers(self) -> None:
        """Install the run's handlers (main thread only)."""

    def _setup_signal_handlers(self) -> None:
        self.install_signal_handlers()


class CheckedConfig(Tap):
    """The tap's own config types and checks where the SDK makes its own (seams 7, 9)."""

    @classmethod
    def typed_settings(cls, config: dict[str, t.Any], *, text: bool) -> dict[str, t.Any]:
        """``config`` with settings given their Python types, in place (``text``: all are text)."""
        return config

    @classmethod
    def typed_by_the_tap(cls, prop: dict[str, t.Any]) -> bool:
        """Whether the tap types a setting of this schema itself (read as text from env)."""
        return False

    @classproperty
    def _env_var_config(cls) -> dict[str, t.Any]:
        cls.append_builtin_config(cls.config_jsonschema)
        schema = cls.config_jsonschema
        as_text = {
            name: {"type": ["string", "null"]} if cls.typed_by_the_tap(prop) else prop
            for name, prop in schema.get("properties", {}).items()
        }
        config = parse_environment_config({**schema, "properties": as_text}, cls._env_var_prefix)
        return cls.typed_settings(dict(config), text=True)

    def config_problems(self, errors: list[str]) -> list[str]:
        """Every problem of the config, given the SDK's ``errors``; secrets never shown."""
        return errors

    def config_refused(self, problems: list[str]) -> Exception:
        """The error a config with ``problems`` ends in."""
        return ConfigValidationError("; ".join(problems), errors=problems)

    def check_discovery_config(self) -> list[str]:
        """Problems that stop even discovery, which does not validate (e.g. mistyped keys)."""
        return []

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        self.append_builtin_config(self.config_jsonschema)
        self.typed_settings(self._config, text=False)
        try:
            errors = super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            errors = list(exc.errors)
        problems = self.config_problems(errors)
        refused = problems if raise_errors else self.check_discovery_config()
        if refused:
            raise self.config_refused(refused)
        return problems
