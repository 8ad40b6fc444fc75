"""The required-literal prefilter (gateway/regex/literals.py) never turns a match into a miss.

A differential test: random patterns from a grammar that covers what the extraction reads
(literals, groups, scoped and global case-insensitivity, alternations, repetitions, classes,
anchors) against random texts; whenever RE2 finds a match, the text must hold every literal
the prefilter requires. Plus the cases where Python's parser and RE2 read a pattern apart.
"""

from __future__ import annotations

import random

import pytest
import re2

from gateway.guardrails.checks import text as text_checks
from gateway.regex import safe_regex
from gateway.regex.literals import cannot_match, required_literals

ALPHABET = "aAbB-@.1 "


def _atom(rng: random.Random, depth: int) -> str:
    choice = rng.randrange(12 if depth < 3 else 7)
    if choice <= 2:
        return rng.choice("aAbB-@1")
    if choice == 3:
        return rng.choice([r"\.", r"\-", r"\d", r"\w", r"\s", "."])
    if choice == 4:
        return rng.choice(["[ab]", "[^a]", "[A-Z]", "[-@]", r"[\d.]"])
    if choice == 5:
        return rng.choice([r"\b", "^", "$", r"\B"])
    if choice == 6:
        return rng.choice("ab-")
    inner = _sequence(rng, depth + 1)
    if choice == 7:
        return f"(?:{inner})"
    if choice == 8:
        return f"({inner}|{_sequence(rng, depth + 1)})"
    if choice == 9:
        return f"(?i:{inner})"
    if choice == 10:
        return f"(?-i:{inner})"
    return f"({inner})"


def _sequence(rng: random.Random, depth: int) -> str:
    parts = []
    for _ in range(rng.randint(1, 4)):
        atom = _atom(rng, depth)
        if rng.random() < 0.3 and atom not in (r"\b", "^", "$", r"\B"):
            atom += rng.choice(["?", "*", "+", "{2}", "{0,2}", "{1,3}", "??", "+?"])
        parts.append(atom)
    return "".join(parts)


def test_a_text_that_matches_always_holds_the_required_literals() -> None:
    rng = random.Random(20261206)
    checked = matched = filtered = 0
    for _ in range(3000):
        pattern = ("(?i)" if rng.random() < 0.15 else "") + _sequence(rng, 0)
        try:
            compiled = re2.compile(pattern)
        except re2.error:
            continue
        literals = required_literals(pattern)
        for _ in range(8):
            text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
            checked += 1
            if compiled.search(text) is not None:
                matched += 1
                assert not cannot_match(literals, text), (pattern, text, literals)
            elif cannot_match(literals, text):
                filtered += 1
    # The grammar exercised both sides: many matches, and many misses the prefilter told.
    assert matched > 2000 and filtered > 2000, (checked, matched, filtered)


@pytest.mark.parametrize(("pattern", "literals"), [
    (r"\b\d{3}-\d{2}-\d{4}\b", ("-",)),
    (r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}", ("sk-",)),
    (r"(?i)[a-z0-9._%+-]+@[a-z0-9-]+\.[a-z]{2,}", ("@",)),  # and "." (any order)
    (r"(?i)abc", ()),  # letters under case-insensitivity: nothing required
    (r"(?i)a(?-i:bc)d", ("bc",)),
    (r"foo|bar", ()),  # an alternation requires neither
    (r"x?yz", ("yz",)),
    (r"(?:ab)+c", ("ab", "c")),
    (r"[[:alpha:]]x", ()),  # Python reads a set and a literal "]"; RE2 a POSIX class
    (r"\pLx", ()),  # RE2 syntax Python's parser refuses: RE2 alone decides
    (r"\Qa.b\E", ()),
])
def test_what_is_required(pattern: str, literals: tuple[str, ...]) -> None:
    re2.compile(pattern)  # only patterns RE2 accepts reach the prefilter
    found = required_literals(pattern)
    assert set(literals) <= set(found)
    if not literals:
        assert found == ()


def test_posix_classes_are_never_prefiltered_on_a_bracket() -> None:
    # `[[:alpha:]]x` matches "ax" in RE2; Python's reading would have required "]".
    assert re2.compile(r"[[:alpha:]]x").search("ax") is not None
    assert not cannot_match(required_literals(r"[[:alpha:]]x"), "ax")


def test_regex_match_check_and_routing_search_agree_with_re2() -> None:
    class Check:
        params = {"rule": r"\b\d{3}-\d{2}-\d{4}\b", "not": False}
        compiled = safe_regex.compile(r"\b\d{3}-\d{2}-\d{4}\b")

    assert text_checks._search(Check.compiled, Check.params["rule"], "no digits here") is None
    found = text_checks._search(Check.compiled, Check.params["rule"], "ssn 123-45-6789 ok")
    assert found is not None and found.group(0) == "123-45-6789"
    assert safe_regex.search(r"^user-\d+$", "user-42")
    assert not safe_regex.search(r"^user-\d+$", "user42")


@pytest.mark.parametrize("pattern", ["abc(?=x)", r"(a)\1x", "q" + "a" * 1200])
def test_a_refused_pattern_is_refused_whatever_the_text(pattern: str) -> None:
    """The prefilter never answers for a pattern RE2 refuses: routing relies on the raise."""
    with pytest.raises(safe_regex.RegexError):
        safe_regex.search(pattern, "zzz")
