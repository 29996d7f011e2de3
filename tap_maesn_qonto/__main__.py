"""Run the tap with ``python -m tap_maesn_qonto``."""

from tap_maesn_qonto.tap import main

main()
