"""The command line's entry point (``tap-maesn-qonto``, ``python -m tap_maesn_qonto``).

* A signal before the tap exists ends the process at once with 143 (SIGTERM) or 130
  (SIGINT): nothing was read, and an orchestrator's early cancel must not read as
  success (the SDK's own handler exits 0).
* singer-sdk is imported with the cyclic garbage collector off: importing it creates
  hundreds of thousands of objects and no garbage, and the collector would scan them
  again and again (``benchmarks`` ``--startup``: 0.247 s to the first request with it
  on, 0.200 s off). :func:`tune_interpreter` turns it back on, set for records.
* Expected failures end in one readable line and their exit code (errors.py); every
  run ends with ``os._exit`` once its output is flushed, so no fetch-ahead request
  still under way holds the process.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import stat
import sys
import typing as t

_EARLY_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def main() -> None:
    for signum in _EARLY_EXIT:
        signal.signal(signum, _stopped_before_the_tap)
    _exit(run())


def run() -> int:
    """Run the command line; return its exit code."""
    gc.disable()
    from tap_maesn_qonto import inputs  # noqa: PLC0415 - after gc.disable, on purpose
    from tap_maesn_qonto.errors import TapStopError  # noqa: PLC0415
    from tap_maesn_qonto.tap import PENDING_SUMMARY, TapMaesnQonto  # noqa: PLC0415

    tune_interpreter()
    # A signal stops a run by an exception raised wherever the main thread is; inside a
    # log line's write, logging would print its own traceback for it.
    logging.raiseExceptions = False
    code = 0
    try:
        sys.argv[1:] = inputs.check_json_files(sys.argv[1:])
        TapMaesnQonto.cli()
    except TapStopError as exc:
        logger = TapMaesnQonto.logger
        if not logger.hasHandlers():  # failed before the SDK set up logging
            logging.basicConfig(format="%(asctime)s | %(levelname)-8s | %(name)s | %(message)s")
        logger.debug("Traceback of the error below:", exc_info=True)
        logger.error("%s", exc)  # noqa: TRY400 - the traceback is for debug level only
        for line in PENDING_SUMMARY:  # the run's last line, after its error
            logger.info("%s", line)
        _say_plainly_if_merged(str(exc))
        code = int(exc.exit_code)
    except SystemExit as exc:  # click ends its command so
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    return code


def _stopped_before_the_tap(signum: int, frame: t.Any) -> None:
    del frame
    _exit(_EARLY_EXIT[signal.Signals(signum)])


def tune_interpreter() -> None:
    """The collector set for this process's work (the CLI's first step)."""
    # Records are short-lived, acyclic dicts: the default collector thresholds make the
    # cyclic GC rescan them hundreds of times a second. Fewer, larger collections, and
    # the import-time objects frozen out of them (measured: ~5 % less wall time at 100 000 records).
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    gc.enable()


def _say_plainly_if_merged(message: str) -> None:
    """Repeat the error as a plain sentence where a structured log line would be shown raw.

    Under Meltano's structured logging the line above is a JSON record; ``meltano run``
    parses it, but ``meltano config test`` merges the tap's stdout and stderr and prints
    its last line as is. Only then (both on one pipe, JSON logging) is it said again,
    masked like every log line (redaction.py).
    """
    try:
        out, err = os.fstat(1), os.fstat(2)
    except OSError:
        return
    same_pipe = stat.S_ISFIFO(err.st_mode) and (out.st_dev, out.st_ino) == (err.st_dev, err.st_ino)
    if same_pipe and os.environ.get("SINGER_SDK_LOG_CONFIG"):
        from tap_maesn_qonto import redaction  # noqa: PLC0415

        print(redaction.mask_everywhere(message), file=sys.stderr, flush=True)


def _exit(code: int) -> t.NoReturn:
    """Exit now: a fetch-ahead worker still inside a request must not hold the process."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)
