"""tap-maesn-qonto: Qonto invoices, bills and booking proposals through Maesn."""

from __future__ import annotations

import json
import typing as t
from functools import cached_property

from singer_sdk import Tap
from singer_sdk.helpers.capabilities import PluginCapabilities, TapCapabilities

from tap_maesn_qonto import accounts, inputs, quiet, redaction
from tap_maesn_qonto.client import MaesnStream
from tap_maesn_qonto.errors import (
    ExitCode,
    IncompleteSyncError,
    InvalidConfigError,
    ReadsFailedError,
    TapStopError,
)
from tap_maesn_qonto.output import BufferedSingerWriter
from tap_maesn_qonto.read import Outcome
from tap_maesn_qonto.runtime import RunContext
from tap_maesn_qonto.sdk_compat import CheckedConfig, SignalsOfTheRun, WrappedSync
from tap_maesn_qonto.settings import (
    CONFIG_SCHEMA,
    DEFAULT_API_URL,
    DEFAULT_MAX_CONCURRENCY,
    coerce_types,
    find_problems,
    scalar_type,
)
from tap_maesn_qonto.state import check_state
from tap_maesn_qonto.streams import LINE_ITEM_STREAM_TYPES, STREAM_TYPES
from tap_maesn_qonto.timestamps import parse_timestamp, utc_now

if t.TYPE_CHECKING:
    from singer_sdk.streams import Stream

    from tap_maesn_qonto.read import PartitionRead

#: Failed reads named one by one in the run's last line; more are counted.
FAILURES_NAMED = 5


class TapMaesnQonto(WrappedSync, SignalsOfTheRun, CheckedConfig, Tap):
    """Singer tap for Qonto accounting data (invoices, bills, booking proposals) via Maesn."""

    name = "tap-maesn-qonto"
    package_name = "tap-maesn-qonto"
    config_jsonschema = CONFIG_SCHEMA
    message_writer_class = BufferedSingerWriter
    # Only what the tests exercise: BATCH is left out rather than advertised untested.
    # ACTIVATE_VERSION is the tap's own, after a reconcile (reconcile.py).
    capabilities: t.ClassVar[list] = [
        PluginCapabilities.ACTIVATE_VERSION,
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        finally:
            # The SDK has read every --config/--state/--catalog input now.
            inputs.discard_private_copies()
        redaction.install(redaction.secret_values(self.config))
        quiet.install()

    # --- config (sdk_compat.CheckedConfig) --------------------------------------------

    @classmethod
    def typed_settings(cls, config: dict[str, t.Any], *, text: bool) -> dict[str, t.Any]:
        cls.append_builtin_config(cls.config_jsonschema)
        return dict(coerce_types(config, cls.config_jsonschema["properties"], text=text))

    @classmethod
    def typed_by_the_tap(cls, prop: dict[str, t.Any]) -> bool:
        return scalar_type(prop) is not None

    def config_problems(self, errors: list[str]) -> list[str]:
        properties = self.config_jsonschema["properties"]
        problems = [
            *errors,
            *find_problems(self.config, set(properties)),
            *accounts.problems(self.config),
        ]
        # jsonschema quotes the value ("12345678901 is not of type 'string'"): never a key's.
        return redaction.hide_secret_values(problems, self.config, properties)

    def config_refused(self, problems: list[str]) -> Exception:
        return InvalidConfigError(
            f"Invalid config: {'; '.join(problems)}. `tap-maesn-qonto --about` lists every setting."
        )

    def check_discovery_config(self) -> list[str]:
        # Discovery does not validate, but a key of the wrong type stops it too: it could
        # be neither sent nor masked in the logs.
        return redaction.wrongly_typed_secrets(self.config, self.config_jsonschema["properties"])

    # --- the run ----------------------------------------------------------------------

    @cached_property
    def run(self) -> RunContext:
        """What the streams of this run share (session, throttle, stop signal, progress)."""
        try:
            shard = accounts.this_shard(self.config)
        except InvalidConfigError:
            shard = []  # discovery does not validate and needs no account
        return RunContext(
            api_url=str(self.config.get("api_url", DEFAULT_API_URL)),
            max_concurrency=int(self.config.get("max_concurrency", DEFAULT_MAX_CONCURRENCY)),
            max_requests_per_second=self.config.get("max_requests_per_second"),
            accounts={account.label: account for account in shard},
            secrets=tuple(redaction.secret_values(self.config)),
        )

    def install_signal_handlers(self) -> None:
        self.run.install_signal_handlers()

    def load_state(self, state: dict[str, t.Any]) -> None:
        super().load_state(
            check_state(
                state, set(self.streams), self.logger, account_labels=list(self.run.accounts)
            )
        )

    def discover_streams(self) -> list[Stream]:
        parents: list[Stream] = [stream_type(self, run=self.run) for stream_type in STREAM_TYPES]
        return [*parents, *(line_type(self) for line_type in LINE_ITEM_STREAM_TYPES)]

    # --- the run around the SDK's sync (sdk_compat.WrappedSync) -------------------------

    def before_sync(self) -> None:
        """Stop cleanly on a signal from now on; plan every partition's first requests."""
        self.run.install_signal_handlers()
        self.run.syncing = True
        self._warn_if_start_date_ahead()
        if not self.run.accounts:
            self.logger.warning(
                "shard %s of %s holds no account: nothing to read.",
                self.config.get("shard_index", 0),
                self.config.get("shard_count", 1),
            )
        # In the order the SDK syncs them: what is planned ahead runs in that order.
        order = 0
        for stream in self._maesn_streams():
            for context in stream.partitions:
                stream.plan_ahead(context, order)
                order += 1
        self.run.progress.planned(order)

    def after_sync(self, error: BaseException | None) -> None:
        """End with the run's verdict and its summary line.

        Whatever ends the run early, the last STATE written is safe to resume from: every
        partition's bookmark is what its own read leaves (read.py).
        """
        streams = self._maesn_streams()
        try:
            if error is not None:
                self._write_resumable_state()
                self._summary(streams, error)
                return
            self._flush_output()  # the SDK skips a final STATE equal to the last one
        finally:
            self.run.stop.set()  # fetch-ahead workers still waiting give up at once
            self.run.ahead.close()
        try:
            self._verdict(streams)
        except TapStopError as exc:
            self._summary(streams, exc)
            raise
        self._summary(streams, None)

    def _warn_if_start_date_ahead(self) -> None:
        start_date = self.config.get("start_date")
        if start_date and parse_timestamp(str(start_date)) > utc_now():
            self.logger.warning(
                "start_date %s is in the future: only records updated after it are read, so "
                "a stream without a bookmark reads nothing until then.",
                start_date,
            )

    def _maesn_streams(self) -> list[MaesnStream]:
        return [
            s
            for s in self.streams.values()
            if isinstance(s, MaesnStream) and (s.selected or s.has_selected_descendents)
        ]

    def _write_resumable_state(self) -> None:
        for stream in self._maesn_streams():
            stream.store_resumable_states()
        self.state_writer.write_state(self.state)
        self._flush_output()

    def _flush_output(self) -> None:
        """Every message written so far out to the target, whole (output.py)."""
        if isinstance(self.message_writer, BufferedSingerWriter):
            self.message_writer.flush()

    def _verdict(self, streams: list[MaesnStream]) -> None:
        undone: dict[tuple[str, str], list[str]] = {}
        for stream in streams:
            if (left := stream.reconcile_left_undone()) is not None:
                undone.setdefault(left, []).append(stream.name)
        for (what, why), names in undone.items():
            self.logger.warning(
                "The reconcile did not finish for %s (%s), so %s in the target; the next "
                "run reconciles again.",
                ", ".join(names),
                why,
                what,
            )
        reads = [(s.name, read) for s in streams for read in s.reads()]
        failed = [(name, r) for name, r in reads if r.outcome is Outcome.FAILED]
        if len(self.run.accounts) == 1 and len(failed) == 1:
            error = failed[0][1].error
            if isinstance(error, TapStopError):
                raise error  # one account, one failure: its own line
        several = len(self.run.accounts) > 1  # each failed read had its line (client.py)
        if failed:
            labels = sorted({r.label for _, r in failed})
            named = "; ".join(
                f"{name}{f' of {r.label}' if several else ''}: {_first_sentence(r.reason)}"
                for name, r in failed[:FAILURES_NAMED]
            )
            more = len(failed) - FAILURES_NAMED
            what = (
                f"{len(labels)} of {len(self.run.accounts)} accounts failed ({', '.join(labels)})"
                if several
                else f"{len(failed)} of {len(reads)} streams of account {labels[0]} failed"
            )
            msg = (
                f"{what}: {named}{f'; and {more} more reads, named above' if more > 0 else ''}. "
                "Every other read completed and its state was saved; the next run retries "
                "the failed ones."
            )
            raise ReadsFailedError(msg)
        incomplete = sorted({name for name, r in reads if r.outcome is Outcome.INCOMPLETE})
        if incomplete:
            msg = (
                f"Records may be missing from {', '.join(incomplete)}: the data changed "
                "faster than it could be read consistently, or Maesn reported no totals to "
                "prove a whole-list read (see the warnings above). The state was held where "
                "nothing was skipped; run the tap again."
            )
            raise IncompleteSyncError(msg)

    def _summary(self, streams: list[MaesnStream], error: BaseException | None) -> None:
        """The run's last line: how it ended, as JSON an orchestrator can read through Meltano."""
        reads: list[PartitionRead] = [r for s in streams for r in s.reads()]
        code = (
            ExitCode.OK
            if error is None
            else error.exit_code
            if isinstance(error, TapStopError)
            else ExitCode.FAILED
        )
        outcome = {
            ExitCode.OK: "complete",
            ExitCode.INCOMPLETE: "incomplete",
            ExitCode.INTERRUPTED_SIGINT: "interrupted",
            ExitCode.INTERRUPTED_SIGTERM: "interrupted",
        }.get(code, "failed")
        progress = self.run.progress
        failed_accounts = {r.label for r in reads if r.outcome is Outcome.FAILED} | set(
            self.run.failed
        )
        if len(self.run.accounts) > 1 or failed_accounts:
            self.logger.info(
                "accounts: %d read, %d failed; %d records, %d pages, %d requests, %d retries, %.1f s",
                len(self.run.accounts) - len(failed_accounts),
                len(failed_accounts),
                progress.records,
                progress.pages,
                progress.requests,
                progress.retries,
                progress.elapsed,
            )
        summary = {
            "outcome": outcome,
            "exit_code": int(code),
            "accounts": len(self.run.accounts),
            "accounts_read": len(self.run.accounts) - len(failed_accounts),
            "reads": progress.reads_total,
            "reads_done": progress.reads_done,
            "failed": sum(1 for r in reads if r.outcome is Outcome.FAILED),
            "incomplete": sum(1 for r in reads if r.outcome is Outcome.INCOMPLETE),
            "accounts_failed": sorted(failed_accounts),
            "reconciled": [s.name for s in streams if s.reconciled],
            "records": progress.records,
            "requests": progress.requests,
            "retries": progress.retries,
            "seconds": round(progress.elapsed, 1),
        }
        line = RUN_SUMMARY_PREFIX + json.dumps(summary, separators=(",", ":"))
        if error is None:
            self.logger.info("%s", line)
        else:  # after the error's own line (cli.py), so that it stays the run's last line
            PENDING_SUMMARY[:] = [line]


#: The run's last log line, for orchestrators: ``run summary: {json}``.
RUN_SUMMARY_PREFIX = "run summary: "
#: A failed run's summary, for cli.py to log after the error line.
PENDING_SUMMARY: list[str] = []


def _first_sentence(text: str | None) -> str:
    first = (text or "").split(". ", 1)[0]
    return first if len(first) <= 200 else first[:197] + "..."
