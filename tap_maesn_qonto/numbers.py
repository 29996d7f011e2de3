"""JSON numbers with a fraction, kept as the text the API sent.

Money must stay exact, so such a number was decoded into a ``Decimal``: a third of the
CPU of decoding a page, and as much again to write it back out, for values the tap
only passes on. The decoder now keeps each one as its own text (``msgspec.Raw``),
which the RECORD writer copies out verbatim. A ``Decimal`` is made only where a value
is read as a number: an integer or string column (shaping.py), paging totals, and
records handed to code that computes with them (the SDK's stream maps, or a writer
other than msgspec's). Those write a Decimal's own text: the same value, and the same
characters except in exponent forms (``1e3`` is written ``1E+3``).
"""

from __future__ import annotations

import decimal
import typing as t

import msgspec

Raw = msgspec.Raw

#: Decodes a body: numbers without a fraction become int, those with one stay text.
DECODER = msgspec.json.Decoder(float_hook=Raw)


def to_decimal(number: msgspec.Raw) -> decimal.Decimal:
    """The exact value of a number the decoder kept as text."""
    return decimal.Decimal(bytes(number).decode())


def text_of(value: t.Any) -> str:
    """``str(value)``, with a number kept as text written as its Decimal would be."""
    if type(value) is Raw:
        return str(to_decimal(value))
    return str(value)


def with_decimals(value: t.Any) -> t.Any:
    """A copy of ``value`` with every number kept as text turned into a Decimal."""
    if type(value) is Raw:
        return to_decimal(value)
    if isinstance(value, dict):
        return {key: with_decimals(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_decimals(item) for item in value]
    return value
