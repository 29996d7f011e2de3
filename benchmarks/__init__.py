"""Benchmarks of the tap against the Maesn emulator (not shipped in the wheel).

    uv run python -m benchmarks.single     # records/s, RSS, limits; --startup, --profile, --reconcile
    uv run python -m benchmarks.peer       # beside tap-rest-api-msdk; --timeline, --alternate
    uv run python -m benchmarks.accounts   # many small accounts; --reconcile

Every module measures with :mod:`benchmarks.measure` and imports no other benchmark.
``--previous DIR`` runs another checkout's tap (``DIR/.venv``, made with ``uv sync
--locked`` there) in turn with this one, on the same emulator. Each run prints a report
and writes it to ``docs/reports/benchmark-<mode>-<YYYY-MM-DD>.md`` (``--no-report``:
print only).
"""
