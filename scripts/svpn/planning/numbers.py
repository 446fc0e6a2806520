"""Numbers of the capacity model: exact fractions from the inputs' decimal text, and figures for people.

The lowest module of svpn.planning: it imports nothing of svpn.
"""

from __future__ import annotations

import math
from fractions import Fraction

Number = int | float


def frac(value: Number) -> Fraction:
    """Exact arithmetic from the decimal text (0.3 stays 3/10), so ceilings never drift by one."""
    return Fraction(str(value))


def fmt(value: Number | Fraction) -> str:
    """A number for people: whole numbers with thousands separators, others with up to 3 decimals."""
    if isinstance(value, Fraction) and value.denominator == 1:
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):,.3f}".rstrip("0").rstrip(".")


def fmt_users(value: Fraction) -> str:
    return f"{math.floor(value):,}" if value >= 1 else fmt(value)
