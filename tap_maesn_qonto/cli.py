"""The command line's entry point (``tap-maesn-qonto``, ``python -m tap_maesn_qonto``).

It only imports the tap, with the cyclic garbage collector off: importing singer-sdk
creates hundreds of thousands of objects and no garbage, and the collector would scan
them again and again. ``scripts/benchmark.py --startup --previous DIR --runs 9``, with DIR
at e9c2e93 (without this module): 0.247 s to the first request there, 0.200 s here.
``tune_interpreter`` turns the collector back on, set for the records that follow.
"""

import gc


def main() -> None:
    gc.disable()
    from tap_maesn_qonto.tap import main as run  # noqa: PLC0415 - after gc.disable, on purpose

    run()
