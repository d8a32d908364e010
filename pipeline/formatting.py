"""Dutch number formatting (decimal comma, dot between thousands) for the report and figures."""

from __future__ import annotations

import math


def _missing(value: float | int | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def nl_number(value: float | int | None, decimals: int = 0, empty: str = "–") -> str:
    """3050 -> '3.050'; 0.5 with 1 decimal -> '0,5'; None or NaN -> '–'."""
    if _missing(value):
        return empty
    text = f"{float(value):,.{decimals}f}" if decimals else f"{round(float(value)):,d}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def nl_percent(share: float | None, decimals: int = 1, empty: str = "–") -> str:
    """A share 0..1 as a Dutch percentage: 0.1234 -> '12,3%'."""
    if _missing(share):
        return empty
    return f"{nl_number(100 * float(share), decimals)}%"


def nl_points(change: float | None, decimals: int = 1, empty: str = "–") -> str:
    """A change of shares in percentage points, signed: 0.021 -> '+2,1 pp', -0.005 -> '−0,5 pp'."""
    if _missing(change):
        return empty
    points = 100 * float(change)
    if round(points, decimals) == 0:
        return f"{nl_number(0.0, decimals)} pp"
    sign = "+" if points > 0 else "\u2212"
    return f"{sign}{nl_number(abs(points), decimals)} pp"
