"""The command line's entry point (``tap-maesn-qonto``, ``python -m tap_maesn_qonto``).

It only imports the tap, with the cyclic garbage collector off: importing singer-sdk
creates hundreds of thousands of objects and no garbage, and the collector would scan
them again and again (measured: 0.229 s to the first request with it, 0.200 s
without; ``scripts/benchmark.py --startup``). ``tune_interpreter`` turns it back on,
set for the records that follow.
"""

import gc


def main() -> None:
    gc.disable()
    from tap_maesn_qonto.tap import main as run  # noqa: PLC0415 - after gc.disable, on purpose

    run()
