"""Regular expressions from clients and configs, run by RE2: linear time, bounded memory.

Python's `re` backtracks, so a pattern like `^(a+)+$` against forty `a`s and a `!` runs for
minutes on the event loop. RE2 (`google-re2`) matches in time linear in the input and refuses
what it cannot do that way: backreferences (`\\1`) and lookarounds (`(?=`, `(?<!`). Every
pattern a request or config supplies goes through `compile`, which also caps its length.

Linear is not cheap: RE2's cost per input byte grows with the compiled program (a DFA state is a
set of its instructions), so `(a|aa|aaa|aaaa){1,1000}b`, 24 characters and 10,004
instructions, takes seconds on 120 KB. Two caps make one match cost a few milliseconds at
worst: `compile` refuses programs over MAX_PROGRAM_SIZE instructions, and `search` looks at the
first MAX_SEARCH_BYTES bytes of the text only (docs/decisions.md, "Bounded work per request").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, Protocol

import re2

from gateway.regex.literals import cannot_match, required_literals

# The longest pattern accepted, in characters; longer ones are refused with the rest.
MAX_PATTERN_LENGTH = 1000
# The most instructions a compiled pattern may have (RE2's `programsize`). Ordinary routing
# patterns are far below: `^user-\d+$` 6, an email pattern 20, a UUID 70, ten model names in
# an alternation 119. Unicode classes are large (`\p{L}` alone is 1,200) and are refused.
MAX_PROGRAM_SIZE = 200
# `search` matches the first this many bytes (UTF-8) of its text; the rest is not looked at.
MAX_SEARCH_BYTES = 2048
# RE2's memory budget for one compiled pattern (its default, stated): a pattern whose program
# would need more (`(a{1000}){1000}`) fails to compile instead of growing the process.
_MAX_PROGRAM_BYTES = 8 << 20


class Match(Protocol):
    """The part of RE2's match object in use (google-re2 has no type stubs)."""

    # A group that took no part in the match is None; Any there, as typeshed types `re.Match`.
    def group(self, group: int = 0, /) -> str | Any: ...


class Pattern(Protocol):
    """The part of a compiled RE2 pattern (`re2._Regexp`) in use."""

    @property
    def programsize(self) -> int: ...

    def search(self, text: str, /) -> Match | None: ...

    def finditer(self, text: str, /) -> Iterator[Match]: ...

    def sub(self, repl: Callable[[Match], str], text: str, count: int = 0, /) -> str: ...


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
        compiled: Pattern = re2.compile(source, _OPTIONS)
    except re2.error as exc:
        raise RegexError(f"is not a pattern RE2 can run in linear time "
                         f"(no backreferences or lookarounds): {_reason(exc)}") from None
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise RegexError(f"compiles to {compiled.programsize} RE2 instructions; the limit is "
                         f"{MAX_PROGRAM_SIZE} (use fewer or smaller repetitions and classes)")
    required_literals(source)  # worked out now, when configs are read, not in a check's thread
    return compiled


def problem(source: object) -> str | None:
    """Why a pattern is refused, or None when it compiles: for validators that collect."""
    try:
        compile(source)  # it refuses a non-string itself
    except RegexError as exc:
        return str(exc)
    except TypeError:  # unhashable (a list or an object where a pattern belongs)
        return "must be a string"
    return None


def program_size(source: str) -> int:
    """RE2 instructions of an accepted pattern: configs cap the total of theirs."""
    return compile(source).programsize


def head(text: str) -> str:
    """The first MAX_SEARCH_BYTES bytes of `text` in UTF-8, a character cut in two dropped."""
    if len(text) * 4 <= MAX_SEARCH_BYTES:
        return text
    cut = text[:MAX_SEARCH_BYTES].encode("utf-8", "surrogatepass")[:MAX_SEARCH_BYTES]
    return cut.decode("utf-8", "ignore")


def search(pattern: Pattern | str, text: str) -> bool:
    """Whether the pattern matches in the first MAX_SEARCH_BYTES bytes of `text`.

    What lies past them is not looked at, so `$` and a later match are not seen there: the cost
    of one search is bounded by the two caps, whatever the size of the text.
    """
    literals: tuple[str, ...] = ()
    if isinstance(pattern, str):
        compiled = compile(pattern)  # first: a refused pattern raises, whatever the text
        literals = required_literals(pattern)
        pattern = compiled
    text = head(text)
    if cannot_match(literals, text):
        return False
    return pattern.search(text) is not None


def sub(pattern: Pattern | str, replacement: str, text: str, count: int = 0) -> str:
    """`text` with matches replaced by `replacement`, taken literally (no `\\1` expansion)."""
    compiled = compile(pattern) if isinstance(pattern, str) else pattern
    return compiled.sub(lambda _match: replacement, text, count)


def _reason(exc: re2.error) -> str:
    message = exc.args[0] if exc.args else exc
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)
