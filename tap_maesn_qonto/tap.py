"""tap-maesn-qonto: Qonto invoices, bills and booking proposals through Maesn."""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import logging
import os
import shutil
import stat
import sys
import tempfile
import time
import typing as t
from functools import cached_property

from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.helpers.capabilities import PluginCapabilities, TapCapabilities

from tap_maesn_qonto import accounts, quiet, redaction
from tap_maesn_qonto.client import MaesnStream
from tap_maesn_qonto.errors import (
    AccountsFailedError,
    IncompleteSyncError,
    InvalidConfigError,
    InvalidStateError,
    TapStopError,
    WrongApiUrlError,
)
from tap_maesn_qonto.output import BufferedSingerWriter
from tap_maesn_qonto.runtime import RunContext
from tap_maesn_qonto.settings import (
    CONFIG_SCHEMA,
    DEFAULT_API_URL,
    DEFAULT_MAX_CONCURRENCY,
    coerce_types,
    environment_config,
    find_problems,
    hide_secret_values,
    wrongly_typed_secrets,
)
from tap_maesn_qonto.state import check_state
from tap_maesn_qonto.streams import LINE_ITEM_STREAM_TYPES, STREAM_TYPES

if t.TYPE_CHECKING:
    from singer_sdk.streams import Stream


class TapMaesnQonto(Tap):
    """Singer tap for Qonto accounting data (invoices, bills, booking proposals) via Maesn."""

    name = "tap-maesn-qonto"
    package_name = "tap-maesn-qonto"
    config_jsonschema = CONFIG_SCHEMA
    message_writer_class = BufferedSingerWriter
    # Only what the tests exercise: BATCH is left out rather than advertised untested.
    # ACTIVATE_VERSION is the tap's own, after a reconcile (reconcile.py).
    capabilities: t.ClassVar[list] = [
        TapCapabilities.ACTIVATE_VERSION,
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        redaction.install(self._secret_values())
        quiet.install()

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # The SDK has read every --config/--state/--catalog input before it builds the
        # tap: private copies of piped ones go now, not at exit (which os._exit skips).
        _discard_private_copies()
        # 1.25 from a JSON file is a Decimal, "1.25" from Meltano text: floats (settings.py).
        self.append_builtin_config(self.config_jsonschema)
        coerce_types(self._config, self.config_jsonschema["properties"])
        # The SDK checks types and required keys only; formats and typos are ours.
        try:
            errors = super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            errors = list(exc.errors)
        errors += find_problems(self.config, set(self.config_jsonschema["properties"]))
        errors += accounts.problems(self.config)
        properties = self.config_jsonschema["properties"]
        # jsonschema quotes the value ("12345678901 is not of type 'string'"): never a key's.
        errors = hide_secret_values(errors, self.config, properties)
        # Discovery does not validate, but a key of the wrong type stops it too: it could
        # be neither sent nor masked in the logs.
        problems = errors if raise_errors else wrongly_typed_secrets(self.config, properties)
        if problems:
            msg = (
                f"Invalid config: {'; '.join(problems)}. "
                "`tap-maesn-qonto --about` lists every setting."
            )
            raise InvalidConfigError(msg)
        return errors

    @classproperty
    def _env_var_config(cls) -> dict[str, t.Any]:
        # The SDK's, with booleans, integers and numbers read by settings.py: "1.25" is a
        # number, and "abc" or "flase" is named by the validation instead of a traceback.
        cls.append_builtin_config(cls.config_jsonschema)
        return environment_config(cls.config_jsonschema, cls._env_var_prefix)

    def _secret_values(self) -> list[str]:
        """The tenant key and every account key (of every shard), to mask in logs."""
        values = [str(self.config.get("api_key", "")), str(self.config.get("account_key", ""))]
        try:
            values += [account.key for account in accounts.all_accounts(self.config)]
        except InvalidConfigError:  # discovery skips validation; nothing is sent then
            values += [
                str(entry.get("account_key", ""))
                for entry in self.config.get("accounts") or []
                if isinstance(entry, dict)
            ]
        return values

    def load_state(self, state: dict[str, t.Any]) -> None:
        super().load_state(
            check_state(
                state,
                set(self.streams),
                self.logger,
                account_labels=list(self.run.accounts),
            )
        )

    @cached_property
    def run(self) -> RunContext:
        """What the streams of this run share (session, throttle, stop signal)."""
        try:
            shard = accounts.this_shard(self.config)
        except InvalidConfigError:
            shard = []  # discovery does not validate and needs no account
        return RunContext(
            api_url=str(self.config.get("api_url", DEFAULT_API_URL)),
            max_concurrency=int(self.config.get("max_concurrency", DEFAULT_MAX_CONCURRENCY)),
            max_requests_per_second=self.config.get("max_requests_per_second"),
            accounts={account.label: account for account in shard},
        )

    def discover_streams(self) -> list[Stream]:
        parents: list[Stream] = [stream_type(self, run=self.run) for stream_type in STREAM_TYPES]
        return [*parents, *(line_type(self) for line_type in LINE_ITEM_STREAM_TYPES)]

    # The SDK marks sync_all final; this wraps it (super() does all the syncing) because
    # it is the one place where the outcome of the whole run is known in process.
    def sync_all(self) -> None:  # type: ignore[misc]
        """Sync every stream; stop cleanly on a signal; end with the run's verdict.

        Whatever ends the run early, the last STATE written is safe to resume from:
        a partition whose bookmark is not resumable mid-read is put back first.
        """
        self.run.install_signal_handlers()
        try:
            # In the order the SDK syncs them: what is planned ahead runs in that order.
            partitions = ((s, c) for s in self._maesn_streams() for c in s.partitions)
            for order, (stream, context) in enumerate(partitions):
                stream.plan_first_request(context, order)
            super().sync_all()
            self._flush_output()  # the SDK skips a final STATE equal to the last one
        except BaseException:
            self._write_resumable_state()
            raise
        finally:
            self.run.stop.set()  # fetch-ahead workers still waiting give up at once
            self.run.ahead.close()
        self._verdict()

    def _maesn_streams(self) -> list[MaesnStream]:
        return [
            s
            for s in self.streams.values()
            if isinstance(s, MaesnStream) and (s.selected or s.has_selected_descendents)
        ]

    def _write_resumable_state(self) -> None:
        for stream in self._maesn_streams():
            for context in stream.partitions:
                stream.restore_resumable_state(context)
        self.state_writer.write_state(self.state)
        self._flush_output()

    def _flush_output(self) -> None:
        """Every message written so far out to the target, whole (output.py)."""
        if isinstance(self.message_writer, BufferedSingerWriter):
            self.message_writer.flush()

    def _verdict(self) -> None:
        streams = self._maesn_streams()
        run = self.run
        if len(run.accounts) > 1 or run.failed:
            self.logger.info(
                "accounts: %d read, %d failed; %d records, %d pages, %d retries, %.1f s",
                len(run.accounts) - len(run.failed),
                len(run.failed),
                sum(stream.outcome.records for stream in streams),
                sum(stream.outcome.pages for stream in streams),
                sum(stream.outcome.retries for stream in streams),
                time.monotonic() - run.started,
            )
        if run.failed:
            for label, reason in run.failed.items():
                self.logger.error("account %s failed: %s", label, reason)
            msg = (
                f"{len(run.failed)} of {len(run.accounts)} accounts failed "
                f"({', '.join(run.failed)}); every other account was read and its state "
                "saved. Fix or re-link the failed ones (see the lines above); the next run "
                "retries them and resumes the others."
            )
            raise AccountsFailedError(msg)
        if streams and all(stream.outcome.skipped for stream in streams):
            msg = (
                "Every stream answered that its endpoint is not available "
                f"({streams[0].outcome.skipped}). That is not a Qonto account behind Maesn: "
                "check api_url and that account_key belongs to target system qonto or "
                "qonto-sandbox."
            )
            raise WrongApiUrlError(msg)
        incomplete = [stream.name for stream in streams if stream.outcome.incomplete]
        if incomplete:
            msg = (
                f"Records may be missing from {', '.join(incomplete)}: the data changed "
                "faster than it could be read consistently (see the warnings above). The "
                "state was held where nothing was skipped; run the tap again."
            )
            raise IncompleteSyncError(msg)


_JSON_FILE_OPTIONS = {
    "--config": "Fix the JSON or point --config at the right file.",
    "--catalog": "Regenerate it with `tap-maesn-qonto --config ... --discover`.",
    "--state": (
        "Restore the last good state (e.g. `meltano state get`) or delete it to start "
        "from start_date."
    ),
}


#: The private directory of copies of inputs read from pipes (where memfd is missing).
_private_dir: list[str] = []


def _read_input(option: str, value: str) -> tuple[str, bool]:
    """Read one --config/--catalog/--state input, the only time it is read.

    Returns its text and whether it is a regular file (which the SDK may read again;
    a pipe, a FIFO or a terminal it may not).
    """
    name, advice = option[2:], _JSON_FILE_OPTIONS[option]
    try:
        # Click reads "-" as standard input for --state and --catalog.
        source: str | int = 0 if value == "-" and option != "--config" else value
        with open(source, "rb", closefd=source != 0) as stream:
            data = stream.read()
            regular = source != 0 and stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
            if regular:  # /dev/stdin redirected from a file may share its offset with fd 0
                stream.seek(0)
    except OSError as exc:
        msg = f"Cannot read the {name} file {value}: {exc.strerror or exc}. {advice}"
        raise TapStopError(msg) from None
    try:
        return data.decode("utf-8"), regular
    except UnicodeDecodeError:
        msg = f"The {name} file {value} is not UTF-8 text. {advice}"
        raise TapStopError(msg) from None


def _private_copy(text: str, option: str) -> str:
    """A path the SDK can read ``text`` from, readable by this process only.

    On Linux an anonymous in-memory file: nothing ever reaches a disk. Elsewhere a
    0600 file in a 0700 directory of its own, deleted as soon as the SDK has read it
    (see :func:`_discard_private_copies`), and at exit in any case.
    """
    data = text.encode("utf-8")
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        fd = memfd_create(f"tap-maesn-qonto-{option[2:]}")  # close-on-exec: not inherited
        path = f"/proc/self/fd/{fd}"  # open until the process ends; each open reads from 0
        if os.path.exists(path):  # /proc may be missing in odd sandboxes
            with open(fd, "wb", closefd=False) as stream:
                stream.write(data)
            return path
        os.close(fd)
    if not _private_dir:
        _private_dir.append(tempfile.mkdtemp(prefix="tap-maesn-qonto-"))  # mode 0700
        atexit.register(_discard_private_copies)
    fd, path = tempfile.mkstemp(suffix=".json", prefix=f"{option[2:]}-", dir=_private_dir[0])
    with open(fd, "wb") as stream:  # mkstemp: mode 0600, O_EXCL
        stream.write(data)
    return path


def _discard_private_copies() -> None:
    """Delete the private copies of piped inputs, once the SDK has read them."""
    while _private_dir:
        shutil.rmtree(_private_dir.pop(), ignore_errors=True)


def _json_kind(document: t.Any) -> str:
    if isinstance(document, list):
        return "an array"
    if isinstance(document, str):
        return "a string"
    return "a boolean" if isinstance(document, bool) else "a number"


def _reject_constant(name: str) -> t.NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def _checked_input(option: str, value: str) -> str | None:
    """Check one input; return the path to hand the SDK, or None to leave the option out."""
    if option == "--config" and value == "ENV":
        return value
    text, regular = _read_input(option, value)
    name, advice = option[2:], _JSON_FILE_OPTIONS[option]
    error = InvalidStateError if option == "--state" else TapStopError
    body = text.removeprefix("\ufeff")  # a BOM, as some editors write; the SDK accepts it
    if option == "--state" and not body.strip():
        return None  # an empty state file (`touch state.json`) means "no state yet"
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        msg = (
            f"The {name} file {value} is not valid JSON ({exc.msg} at line "
            f"{exc.lineno}, column {exc.colno}). {advice}"
        )
        raise error(msg) from None
    except ValueError as exc:  # NaN, Infinity: Python reads them, the SDK does not
        msg = f"The {name} file {value} is not valid JSON ({exc}). {advice}"
        raise error(msg) from None
    if option == "--state" and document is None:
        return None  # `null`: no state either
    if not isinstance(document, dict):
        msg = (
            f"The {name} file {value} holds {_json_kind(document)}, not a JSON object "
            f"({{...}}). {advice}"
        )
        raise error(msg)
    return value if regular else _private_copy(text, option)


def _check_json_files(argv: list[str]) -> list[str]:
    """Read and check every --config/--catalog/--state input; return the argv for the SDK.

    A missing, corrupt or misshapen file is named instead of a traceback. Each input is
    read exactly once: one that cannot be read twice (``--config <(...)``,
    ``--config /dev/stdin``) is handed over as a private copy instead; an empty state
    file is left out (no state yet). Both ``--config FILE`` and ``--config=FILE`` are
    read, and a repeated --config keeps its place (the SDK merges left to right).
    """
    result: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":  # what follows is not an option
            result += argv[index:]
            break
        option, equals, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if option not in _JSON_FILE_OPTIONS or (not equals and index + 1 == len(argv)):
            result.append(word)  # not ours, or a missing value that Click will report
            index += 1
            continue
        value = inline if equals else argv[index + 1]
        given = argv[index : index + (1 if equals else 2)]
        index += len(given)
        handed = _checked_input(option, value)
        if handed == value:
            result += given
        elif handed is not None:
            result.append(f"{option}={handed}")
    return result


def tune_interpreter() -> None:
    """The collector set for this process's work (the CLI's first step)."""
    # Records are short-lived, acyclic dicts: the default collector thresholds make the
    # cyclic GC rescan them hundreds of times a second. Fewer, larger collections, and
    # the import-time objects frozen out of them (measured: ~5 % less wall time at 100 000 records).
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    gc.enable()  # off while the SDK was imported (cli.py)


def main() -> None:
    """Console entry point: expected failures end in one readable line and their exit code."""
    tune_interpreter()
    try:
        sys.argv[1:] = _check_json_files(sys.argv[1:])
        TapMaesnQonto.cli()
    except TapStopError as exc:
        logger = TapMaesnQonto.logger
        if not logger.hasHandlers():  # failed before the SDK set up logging
            logging.basicConfig(format="%(asctime)s | %(levelname)-8s | %(name)s | %(message)s")
        logger.debug("Traceback of the error below:", exc_info=True)
        logger.error("%s", exc)  # noqa: TRY400 - the traceback is for debug level only
        _say_plainly_if_merged(str(exc))
        _exit(exc.exit_code)


def _say_plainly_if_merged(message: str) -> None:
    """Repeat the error as a plain sentence where a structured log line would be shown raw.

    Under Meltano's structured logging the line above is a JSON record; ``meltano run``
    parses it, but ``meltano config test`` merges the tap's stdout and stderr and prints
    its last line as is. Only then (both on one pipe, JSON logging) is it said again.
    """
    try:
        out, err = os.fstat(1), os.fstat(2)
    except OSError:
        return
    same_pipe = stat.S_ISFIFO(err.st_mode) and (out.st_dev, out.st_ino) == (err.st_dev, err.st_ino)
    if same_pipe and os.environ.get("SINGER_SDK_LOG_CONFIG"):
        print(redaction.redact(message, ()), file=sys.stderr, flush=True)


def _exit(code: int) -> t.NoReturn:
    """Exit now: a fetch-ahead worker still inside a request must not hold the process."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)
