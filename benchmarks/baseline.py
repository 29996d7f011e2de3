"""The bare read+write client whose wall time is the 0 ms limit of ``benchmarks.single``.

    python -m benchmarks.baseline URL PAGES

It GETs every page of invoices in order over one keep-alive session with the tap's
headers and the whole list's query, decodes each with ``json.loads(parse_float=Decimal)``
and writes every record as one RECORD line with msgspec (as the tap's writer does) to
stdout, and nothing else. It runs as its own process, like the tap, and imports nothing
of the tap, so it pays only for what it measures.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from decimal import Decimal

import msgspec
import requests

from benchmarks.measure import api_headers, list_params


def read_and_write(url: str, pages: int) -> int:
    """Every page of ``url``'s invoices to stdout as RECORD lines; returns how many."""
    # Same framing as the tap's messages, so the benchmark counts both the same way.
    encode = msgspec.json.Encoder(decimal_format="number").encode
    out = sys.stdout.buffer
    written = 0
    with requests.Session() as session:
        session.headers.update(api_headers())
        for page in range(1, pages + 1):
            response = session.get(
                f"{url}/accounting/invoices", params=list_params(page), timeout=60
            )
            response.raise_for_status()
            for record in json.loads(response.content, parse_float=Decimal)["data"]:
                out.write(encode({"type": "RECORD", "stream": "invoices", "record": record}))
                out.write(b"\n")
                written += 1
    out.flush()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("pages", type=int)
    args = parser.parse_args(argv)
    written = read_and_write(args.url, args.pages)
    print(f"baseline: {written} records written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
