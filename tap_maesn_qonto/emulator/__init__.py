"""A local Maesn Unified API emulator (Qonto target) for tests, the quick start and benchmarks.

Standard library only. Start one with ``with Emulator() as emu: ...`` or from a shell with
``python -m tap_maesn_qonto.emulator``.
"""

from .data import RESOURCES
from .server import (
    DEFAULT_API_KEY,
    FAULT_KINDS,
    QONTO_ACCOUNT_KEY,
    RANDOM_FAULT_KINDS,
    SANDBOX_ACCOUNT_KEY,
    Emulator,
    EmulatorSettings,
    many_accounts,
)

__all__ = [
    "DEFAULT_API_KEY",
    "FAULT_KINDS",
    "QONTO_ACCOUNT_KEY",
    "RANDOM_FAULT_KINDS",
    "RESOURCES",
    "SANDBOX_ACCOUNT_KEY",
    "Emulator",
    "EmulatorSettings",
    "many_accounts",
]
