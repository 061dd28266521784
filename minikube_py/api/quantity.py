"""Resource quantities (`500m`, `1.5`, `64Mi`, `1e3`), parsed exactly.

Quantities stay text on the models, as on the wire; this module turns them into numbers when
something must compute: the scheduler and cgroups want CPU in millicores and memory in bytes.
Decimal arithmetic keeps `0.1` and `100m` equal, as Kubernetes' `resource.Quantity` does; both
conversions round up, like `Quantity.MilliValue()` and `Value()`.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

QUANTITY_REGEX = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"

_SUFFIX_MULTIPLIERS = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_NUMBER = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(.*)", re.DOTALL)
_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)")


def parse_quantity(text: str | int | float) -> Decimal:
    """The exact value of a quantity: `"500m"` -> Decimal("0.5"), `"1Ki"` -> 1024.

    Raises ValueError saying what a quantity looks like when `text` is not one.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ValueError(f"quantity must be a string such as \"500m\" or \"64Mi\", got {text!r}")
    candidate = str(text) if not isinstance(text, str) else text
    match = _NUMBER.fullmatch(candidate)
    if match is None:
        raise ValueError(f"invalid quantity {candidate!r}: quantities must match the regular expression '{QUANTITY_REGEX}'")
    sign, digits, suffix = match.groups()
    if suffix in _SUFFIX_MULTIPLIERS:
        multiplier = _SUFFIX_MULTIPLIERS[suffix]
    else:
        exponent = _EXPONENT.fullmatch(suffix)
        if exponent is None:
            raise ValueError(
                f"invalid quantity {candidate!r}: unknown suffix {suffix!r} (use n, u, m, k, M, G, T, P, E, "
                "Ki, Mi, Gi, Ti, Pi, Ei or an exponent such as e3)"
            )
        if abs(int(exponent.group(1))) > 100:
            raise ValueError(f"invalid quantity {candidate!r}: exponent out of range")
        multiplier = Decimal(10) ** int(exponent.group(1))
    try:
        value = Decimal(digits) * multiplier
    except InvalidOperation:
        raise ValueError(f"invalid quantity {candidate!r}") from None
    return -value if sign == "-" else value


def cpu_millis(text: str | int | float) -> int:
    """CPU in millicores, rounded up: `"250m"` -> 250, `"1.5"` -> 1500, `"0.0001"` -> 1."""
    return math.ceil(parse_quantity(text) * 1000)


def memory_bytes(text: str | int | float) -> int:
    """Memory in bytes, rounded up: `"64Mi"` -> 67108864, `"1G"` -> 1000000000."""
    return math.ceil(parse_quantity(text))


def format_millis(millis: int) -> str:
    """Millicores as Kubernetes prints them: 1500 -> `"1500m"`, 2000 -> `"2"`."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
