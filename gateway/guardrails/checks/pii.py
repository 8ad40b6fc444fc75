"""The PII preset of regexReplace: e-mail, phone, credit card, IBAN and API-key shapes.

Each kind is one or more RE2 patterns (each within safe_regex's size cap), some with a
checksum that a match must pass before it is redacted: credit card numbers the Luhn check,
IBANs ISO 13616's mod-97. They run in a fixed order (keys, e-mail, IBAN, card, phone) so that
a longer shape is redacted before a shorter one could claim part of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.regex import safe_regex


def luhn(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def iban(candidate: str) -> bool:
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


@dataclass(frozen=True, slots=True)
class Shape:
    kind: str
    pattern: str
    valid: Callable[[str], bool] | None = None  # a match must also pass this to be redacted

    @property
    def compiled(self) -> safe_regex.Pattern:
        return safe_regex.compile(self.pattern)


SHAPES: tuple[Shape, ...] = (
    Shape("api_key", r"\bsk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}"),  # OpenAI, Anthropic
    Shape("api_key", r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    Shape("api_key", r"\bgh[pousr]_[A-Za-z0-9]{36,}"),  # GitHub
    Shape("api_key", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack
    Shape("api_key", r"\bAIza[0-9A-Za-z_-]{35}"),  # Google
    Shape("api_key", r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}"),  # Stripe
    Shape("api_key", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
    Shape("email", r"(?i)[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}"),
    Shape("iban", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", iban),
    Shape("credit_card", r"\b(?:\d[ -]?){12,18}\d\b", luhn),
    Shape("phone", r"(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}"
                   r"|\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b)"),
)
KINDS = ("email", "phone", "credit_card", "iban", "api_key")
# `preset` names: one kind, or "pii" for all of them.
PRESETS = {"pii": KINDS, **{kind: (kind,) for kind in KINDS}}


def shapes(names: list[str]) -> tuple[Shape, ...]:
    """The shapes of the named presets, in the fixed order."""
    kinds = {kind for name in names for kind in PRESETS[name]}
    return tuple(shape for shape in SHAPES if shape.kind in kinds)
