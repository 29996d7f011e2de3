"""Run the Maesn emulator from a shell: ``python -m tap_maesn_qonto.emulator --port 8787``.

Serves until SIGINT or SIGTERM, then exits 0. With ``--url-file`` the URL is written to that file
once the server listens, so scripts can wait for the file instead of parsing stdout.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from .server import (
    DEFAULT_COUNTS,
    PAST_LAST_PAGE_MODES,
    RETRY_AFTER_FORMATS,
    Emulator,
    EmulatorSettings,
    many_accounts,
)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tap_maesn_qonto.emulator",
        description="Serve the Maesn Unified API emulator (Qonto) until SIGINT or SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--invoices", type=int, default=DEFAULT_COUNTS["invoices"])
    parser.add_argument("--bills", type=int, default=DEFAULT_COUNTS["bills"])
    parser.add_argument("--booking-proposals", type=int, default=DEFAULT_COUNTS["bookingProposals"])
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--past-last-page", choices=PAST_LAST_PAGE_MODES, default="empty")
    parser.add_argument(
        "--many-accounts",
        type=int,
        metavar="N",
        help="serve N Qonto accounts emulator-account-0001... instead of the two default ones",
    )
    parser.add_argument("--tie-group-size", type=int, default=0)
    parser.add_argument("--updated-lag-seconds", type=float, default=0.0)
    parser.add_argument("--nulls-last", action="store_true")
    parser.add_argument("--list-omits-line-items", type=float, default=0.0)
    parser.add_argument("--retry-after-format", choices=RETRY_AFTER_FORMATS, default="seconds")
    parser.add_argument("--url-file", type=Path, help="write the URL here once listening")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def _settings(args: argparse.Namespace) -> EmulatorSettings:
    settings = EmulatorSettings(
        seed=args.seed,
        counts={
            "invoices": args.invoices,
            "bills": args.bills,
            "bookingProposals": args.booking_proposals,
        },
        host=args.host,
        port=args.port,
        verbose=args.verbose,
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        past_last_page=args.past_last_page,
        tie_group_size=args.tie_group_size,
        updated_lag_seconds=args.updated_lag_seconds,
        nulls_last=args.nulls_last,
        list_omits_line_items=args.list_omits_line_items,
        retry_after_format=args.retry_after_format,
    )
    if args.many_accounts is not None:
        settings.accounts = many_accounts(args.many_accounts)
    return settings


def _write_atomically(path: Path, text: str) -> None:
    """Readers polling for the file never see it half written."""
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, delete=False, encoding="utf-8"
    ) as handle:
        handle.write(text + "\n")
    os.replace(handle.name, path)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop.set())
    with Emulator(_settings(args)) as emulator:
        settings = emulator.settings
        account_keys = list(settings.accounts)
        if len(account_keys) > 4:
            account_keys = [*account_keys[:2], "...", f"{account_keys[-1]} ({len(account_keys)})"]
        print(
            f"Maesn emulator listening on {emulator.url} (api key {', '.join(settings.api_keys)}; "
            f"account keys {', '.join(account_keys)})",
            flush=True,
        )
        if args.url_file:
            _write_atomically(args.url_file, emulator.url)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
