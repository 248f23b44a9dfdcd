"""Money as ``Decimal`` with exactly two places, and integer fen. Never float.

>>> yuan("12.5")
Decimal('12.50')
>>> to_fen(yuan("12.50")), from_fen(1250)
(1250, Decimal('12.50'))
>>> yuan(1.5)
Traceback (most recent call last):
...
TypeError: money must not be a float: 1.5
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, ROUND_HALF_UP

CENT = Decimal("0.01")


def yuan(value: str | int | Decimal) -> Decimal:
    """Parse an amount in yuan into a ``Decimal`` with two places.

    Raises ``TypeError`` for float, ``ValueError`` for text that is not a number, that has more
    than two decimals, or that is not finite.
    """
    if isinstance(value, float):
        raise TypeError(f"money must not be a float: {value!r}")
    if isinstance(value, bool):
        raise TypeError(f"money must not be a bool: {value!r}")
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    q = d.quantize(CENT)
    if q != d:
        raise ValueError(f"more than two decimal places: {value!r}")
    return q


def to_fen(amount: Decimal) -> int:
    """Yuan ``Decimal`` to integer fen; refuses fractions of a fen."""
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"fraction of a fen: {amount!r}")
    return int(fen)


def from_fen(fen: int) -> Decimal:
    """Integer fen to yuan ``Decimal`` with two places."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError(f"fen must be an int: {fen!r}")
    return (Decimal(fen) / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def format_yuan(amount: Decimal) -> str:
    """``Decimal('1234.5')`` -> ``'1234.50'`` (no grouping; for files)."""
    return f"{yuan(amount):.2f}"
