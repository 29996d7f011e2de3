"""The places the tap leans on singer-sdk beyond its public hooks (sdk_compat.py); these
fail if the SDK changes what a seam relies on. This file imports, of the tap, only
sdk_compat.py and the tap itself.

* ``Stream._write_record_message`` is overridden: without stream maps, flattening or
  deselected properties, RECORD messages skip the SDK's no-op work, and must be exactly
  what the SDK's own path writes, through the tap's own writer as through any other.
* ``Stream._increment_stream_state`` is overridden: the read sets the partition's
  bookmark after each record, and every STATE it leaves is safe to resume from.
* ``Stream._stream_version`` is set (``carry_version``) so that RECORD messages carry
  the table version; the SDK has no public setter.
* ``StreamStateManager.get_context_state`` is replaced by an indexed lookup, and the
  partitions of accounts no longer configured are read from the state's own list.
* A partition's bookmark is written (``write_bookmark``) where the SDK's private
  ``increment_state`` writes it.
* ``PluginBase._setup_signal_handlers`` and ``PluginBase._validate_config`` are
  overridden: the tap's own signal handling and config checks, where the SDK's are.
* ``Tap.sync_all`` (final in the SDK) is wrapped: the wrapper calls the SDK's and
  adds the run's verdict, so an incomplete run must still end with exit code 3.
* ``STATE_MSG_FREQUENCY`` is set per stream instance: the SDK still reads it per record.

Here, the checks that need no server; those that sync against the emulator:
tests/sync/test_sdk_compat.py.
"""

from __future__ import annotations

import inspect
import re
import typing as t
from decimal import Decimal
from pathlib import Path

import pytest
from singer_sdk import Tap
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.plugin_base import PluginBase
from singer_sdk.singerlib import StateMessage
from singer_sdk.streams.core import Stream

from tap_maesn_qonto import sdk_compat
from tap_maesn_qonto.errors import InvalidConfigError
from tap_maesn_qonto.output import BufferedSingerWriter
from tap_maesn_qonto.sdk_compat import PlainRecordMessages
from tap_maesn_qonto.tap import TapMaesnQonto

if t.TYPE_CHECKING:
    pass


def test_the_sdk_still_reads_state_msg_frequency_per_record() -> None:
    assert "STATE_MSG_FREQUENCY" in inspect.getsource(Stream._sync_records)


def test_the_sdk_still_moves_the_bookmark_per_record_through_the_override() -> None:
    assert "self._increment_stream_state(record, context=current_context)" in inspect.getsource(
        Stream._sync_records
    )
    parameters = inspect.signature(Stream._increment_stream_state).parameters
    assert list(parameters) == ["self", "latest_record", "context"]


def test_the_sdk_still_writes_records_as_the_override_does() -> None:
    source = inspect.getsource(Stream._write_record_message)
    assert "self._generate_record_messages(record)" in source
    assert "self._tap.write_message(record_message)" in source
    assert "self.state_manager.is_flushed = False" in source


def _sdk_path_taken(config: dict) -> bool:
    tap = TapMaesnQonto(config=config)
    return any(
        s.records_need_the_sdk for s in tap.streams.values() if isinstance(s, PlainRecordMessages)
    )


def test_stream_maps_flattening_and_deselection_take_the_sdks_path() -> None:
    base = {"api_key": "k", "account_key": "a"}
    assert not _sdk_path_taken(base)
    assert _sdk_path_taken({**base, "stream_maps": {"invoices": {"name": "__NULL__"}}})
    assert _sdk_path_taken({**base, "flattening_enabled": True, "flattening_max_depth": 1})


def test_the_sdk_still_finds_partition_state_through_the_indexed_method() -> None:
    # sdk_compat.py replaces the manager's get_context_state with an indexed one; that
    # helps only while the per-record path looks partitions up through it.
    tap = TapMaesnQonto(config={"api_key": "k", "account_key": "a"})
    manager_type = type(tap.streams["invoices"].state_manager)
    source = inspect.getsource(manager_type.increment_state)
    assert "self.get_context_state(context)" in source
    assert "def get_context_state" in inspect.getsource(manager_type)


def test_a_bookmark_is_written_where_the_sdks_own_state_helper_writes_it() -> None:
    from singer_sdk.helpers._state import increment_state  # noqa: PLC0415  the contract

    value = "2026-11-30T10:00:00Z"
    by_the_sdk: dict[str, t.Any] = {"context": {"account_label": "a"}}
    increment_state(
        by_the_sdk,
        latest_record={"updatedDate": value},
        replication_key="updatedDate",
        is_sorted=True,
        check_sorted=False,
    )
    by_the_tap: dict[str, t.Any] = {"context": {"account_label": "a"}}
    sdk_compat.write_bookmark(by_the_tap, "updatedDate", value)
    assert by_the_tap == by_the_sdk
    sdk_compat.write_bookmark(by_the_tap, "updatedDate", None)
    assert by_the_tap == {"context": {"account_label": "a"}}


def test_partition_states_are_the_sdks_own_dicts_and_keep_accounts_no_longer_configured() -> None:
    gone = {
        "context": {"account_label": "gone"},
        "replication_key": "updatedDate",
        "replication_key_value": "2026-01-01T00:00:00.000000Z",
    }
    state = {"bookmarks": {"invoices": {"partitions": [gone]}}}
    config = {"api_key": "k", "accounts": [{"label": "a", "account_key": "key-a-00000"}]}
    stream = TapMaesnQonto(config=config, state=state).streams["invoices"]
    states = sdk_compat.partition_states(stream, "account_label")
    assert states.keys() == {"gone", "a"}
    assert states["gone"] == gone
    assert states["a"] is stream.get_context_state({"account_label": "a"})
    assert stream.stream_state["partitions"][-1] is states["a"]  # where STATE comes from


def test_state_messages_are_the_bytes_the_sdks_writer_makes() -> None:
    state = {
        "bookmarks": {
            "invoices": {
                "partitions": [
                    {
                        "context": {"account_label": f"c{i}"},
                        "replication_key": "updatedDate",
                        "replication_key_value": "2026-01-02T03:04:05.000000Z",
                        "table_version": 1764000000000 + i,
                        "progress_markers": {"Note": None, "n": Decimal("1.50")},
                    }
                    for i in range(3)
                ]
            }
        }
    }
    message = StateMessage(value=state)
    assert bytes(BufferedSingerWriter().serialize_message(message)) == bytes(
        MsgSpecWriter().serialize_message(message)
    )


def test_the_sdk_still_sets_up_signals_and_checks_config_where_the_tap_hooks_in() -> None:
    source = inspect.getsource(PluginBase.__init__)
    assert "self._validate_config(raise_errors=validate_config)" in source
    assert "self._setup_signal_handlers()" in source
    assert list(inspect.signature(PluginBase._validate_config).parameters) == [
        "self",
        "raise_errors",
    ]
    assert issubclass(TapMaesnQonto, sdk_compat.SignalsOfTheRun)
    assert issubclass(TapMaesnQonto, sdk_compat.CheckedConfig)


def test_a_config_the_sdk_refuses_is_refused_by_the_tap_in_its_own_words() -> None:
    secret = "0123456789abcdef-tenant"
    with pytest.raises(InvalidConfigError) as refused:
        TapMaesnQonto(config={"api_key": secret, "account_key": 12345678901, "page_size": "x"})
    assert "page_size" in str(refused.value)
    assert "12345678901" not in str(refused.value)  # jsonschema quotes it; the tap never


def test_the_signal_handlers_are_the_runs_once_the_tap_exists() -> None:
    import signal  # noqa: PLC0415

    before = signal.getsignal(signal.SIGTERM)
    try:
        tap = TapMaesnQonto(config={"api_key": "k" * 8, "account_key": "a" * 8})
        handler = signal.getsignal(signal.SIGTERM)
        assert getattr(handler, "__self__", None) is tap.run
    finally:
        signal.signal(signal.SIGTERM, before)


def test_no_module_but_sdk_compat_leans_on_the_sdk_beyond_its_public_hooks() -> None:
    # The seams sdk_compat.py names, and the SDK's private modules: used nowhere else.
    private = re.compile(
        r"\._(write_record_message|increment_stream_state|stream_version|validate_config"
        r"|setup_signal_handlers|env_var_config|config|tap|handle_termination)\b"
        r"|singer_sdk(\.\w+)*\._\w+"
        r"|\.state_manager\b"  # the SDK's private StreamStateManager
    )
    # The SDK's state layout, read or written by hand during a run. state.py may: it
    # checks the state document (Singer's format) before the SDK is given it.
    layout = re.compile(
        r"\[\"partitions\"\]|\.get\(\"partitions\"|\"replication_key(_value)?\"\]\s*=(?!=)"
        r"|\.pop\(\"replication_key"
    )
    package = Path(sdk_compat.__file__).parent
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(package.glob("*.py"))
        if path.name != "sdk_compat.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if private.search(line) or (path.name != "state.py" and layout.search(line))
    ]
    assert not offenders, offenders


def test_the_run_wraps_the_sdks_sync_all_through_its_hooks() -> None:
    assert issubclass(TapMaesnQonto, sdk_compat.WrappedSync)
    assert TapMaesnQonto.sync_all is sdk_compat.WrappedSync.sync_all
    assert "def sync_all" in inspect.getsource(Tap)
