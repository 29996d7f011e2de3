"""The Singer SDK's standard tap tests, run against the Maesn emulator.

The emulator starts at import time because the SDK builds its test classes at
collection time. Two of the SDK's checks cannot fail (duplicate primary keys and
nested progress markers pass); test_sync.py asserts those properties directly.
"""

from __future__ import annotations

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_maesn_qonto.emulator import Emulator
from tap_maesn_qonto.tap import TapMaesnQonto
from tests.support.configs import tap_config

EMULATOR = Emulator(counts={"invoices": 120, "bills": 90, "bookingProposals": 60})
EMULATOR.start()

TestTapMaesnQonto = get_tap_test_class(
    tap_class=TapMaesnQonto,
    config=tap_config(EMULATOR, page_size=20),
    suite_config=SuiteConfig(max_records_limit=150),
)
