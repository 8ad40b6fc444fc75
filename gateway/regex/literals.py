"""Required literals: text that every match of a pattern contains, to answer "no match"
without running RE2 when the text lacks it (the prefilter ripgrep and RE2's own FilteredRE2
use).

Why it pays: a guardrail's RE2 search of a 2 KB prompt costs about 4 µs in a tight loop but
20-25 µs in a serving process, where the DFA's memory is out of the CPU's caches by the time
the next request comes. A pattern such as `\\b\\d{3}-\\d{2}-\\d{4}\\b` can only match text
that holds a `-`; `"-" in text` costs a fraction of a microsecond.

The literals are read from Python's own parser (`re._parser`), trusted only where its syntax
and RE2's agree. It is conservative: a literal counts only outside alternations and optional
repetitions, and in case-insensitive parts only ASCII characters that are not letters (`@`,
`-`, digits: no case has another spelling of them); a pattern the parser refuses, or one whose
meaning differs between the two (POSIX classes `[[:alpha:]]`, which Python reads as a set
followed by a literal `]`), has none: RE2 then always runs. Only patterns RE2 has accepted
get here (safe_regex.compile runs first), so syntax only Python accepts does not matter.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

_MOST = 3  # literals kept, longest first: each costs one substring scan of the text
_DIFFERENT_IN_RE2 = ("[:",)  # spelled the same, meant otherwise (see the docstring)


@lru_cache(maxsize=1024)
def required_literals(source: str) -> tuple[str, ...]:
    """Strings that every match of `source` contains, case-sensitively; () when unsure."""
    if any(mark in source for mark in _DIFFERENT_IN_RE2):
        return ()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possible nested set" and the like
            parsed = _parser.parse(source)
        runs = _runs(list(parsed), bool(parsed.state.flags & re.IGNORECASE))
    except Exception:  # the parser's errors, a recursion too deep: RE2 alone decides
        return ()
    kept = sorted(set(runs), key=len, reverse=True)[:_MOST]
    return tuple(kept)


def cannot_match(literals: tuple[str, ...], text: str) -> bool:
    """True when `text` lacks one of `literals`, so the pattern cannot match it."""
    for literal in literals:  # noqa: SIM110 (a loop: any() over a generator costs more here)
        if literal not in text:
            return True
    return False


def _runs(nodes: list[Any], ignorecase: bool) -> list[str]:
    """The literal runs a sequence of parsed nodes always matches."""
    runs: list[str] = []
    current: list[str] = []
    for op, arg in nodes:
        if op is sre.LITERAL and (not ignorecase or _caseless(arg)):
            current.append(chr(arg))
            continue
        if current:  # a run ends at anything that is not a literal
            runs.append("".join(current))
            current = []
        if op is sre.SUBPATTERN:
            _group, add_flags, del_flags, inner = arg
            inner_ignorecase = (ignorecase or bool(add_flags & re.IGNORECASE)) \
                and not del_flags & re.IGNORECASE
            runs.extend(_runs(list(inner), inner_ignorecase))
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            least, _most, inner = arg
            if least >= 1:
                runs.extend(_runs(list(inner), ignorecase))
        # Alternations, classes, anchors and the rest require no literal here.
    if current:
        runs.append("".join(current))
    return runs


def _caseless(code: int) -> bool:
    """An ASCII character that is not a letter: matched as it is under case-insensitivity."""
    return code < 128 and not chr(code).isalpha()
