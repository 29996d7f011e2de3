"""Compare what a target loaded with the emulator's truth, value by value (the quick start's
last step, scripts/quickstart.sh).

    python3 scripts/check_warehouse.py --emulator URL --postgres .quickstart/pg.json --schema qonto

The check and its command line are tests/support/warehouse_check.py, which the end-to-end
tests share; standard library only, so the system's python3 runs it. Exits 1 on any
difference.
"""

import sys
from pathlib import Path

# This file runs as a script, from any interpreter: the repository root makes tests.support
# importable (no package of this checkout needs to be installed).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.warehouse_check import main

if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C in the quick start: its own line says so
        sys.exit(130)
