"""Regular expressions from clients and configs, run by RE2: linear time, bounded memory.

Python's `re` backtracks, so a pattern like `^(a+)+$` against forty `a`s and a `!` runs for
minutes on the event loop. RE2 (`google-re2`) matches in time linear in the input and refuses
what it cannot do that way: backreferences (`\\1`) and lookarounds (`(?=`, `(?<!`). Every
pattern a request or config supplies goes through `compile`, which also caps its length.
"""

from __future__ import annotations

from functools import lru_cache

import re2

# The longest pattern accepted, in characters; longer ones are refused with the rest.
MAX_PATTERN_LENGTH = 1000
# RE2's memory budget for one compiled pattern (its default, stated): a pattern whose program
# would need more (`(a{1000}){1000}`) fails to compile instead of growing the process.
_MAX_PROGRAM_BYTES = 8 << 20

Pattern = re2._Regexp


class RegexError(ValueError):
    """A pattern that is too long or that RE2 cannot run; the message says which."""


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = _MAX_PROGRAM_BYTES
    options.log_errors = False  # the error is raised to the caller, not printed to stderr
    return options


_OPTIONS = _options()


@lru_cache(maxsize=1024)
def compile(source: str) -> Pattern:
    """The compiled pattern, cached; RegexError when it is refused."""
    if not isinstance(source, str):
        raise RegexError("must be a string")
    if len(source) > MAX_PATTERN_LENGTH:
        raise RegexError(f"is {len(source)} characters long; the limit is {MAX_PATTERN_LENGTH}")
    try:
        return re2.compile(source, _OPTIONS)
    except re2.error as exc:
        raise RegexError(f"is not a pattern RE2 can run in linear time "
                         f"(no backreferences or lookarounds): {_reason(exc)}") from None


def problem(source: object) -> str | None:
    """Why a pattern is refused, or None when it compiles: for validators that collect."""
    try:
        compile(source)  # type: ignore[arg-type]
    except RegexError as exc:
        return str(exc)
    except TypeError:  # unhashable (a list or an object where a pattern belongs)
        return "must be a string"
    return None


def search(pattern: Pattern | str, text: str) -> bool:
    """Whether the pattern matches anywhere in `text`."""
    compiled = compile(pattern) if isinstance(pattern, str) else pattern
    return compiled.search(text) is not None


def sub(pattern: Pattern | str, replacement: str, text: str, count: int = 0) -> str:
    """`text` with matches replaced by `replacement`, taken literally (no `\\1` expansion)."""
    compiled = compile(pattern) if isinstance(pattern, str) else pattern
    return compiled.sub(lambda _match: replacement, text, count)


def _reason(exc: re2.error) -> str:
    message = exc.args[0] if exc.args else exc
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)
