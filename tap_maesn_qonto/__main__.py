"""Run the tap with ``python -m tap_maesn_qonto``."""

from tap_maesn_qonto.cli import main

main()
