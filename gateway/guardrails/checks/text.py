"""Checks on the text itself: regexMatch, contains, counts, letter case, endsWith, notNull.

Each reads `subject.text` (content.py: the last message, the first choice, ...). A missing
text is an error (fail-open) where Portkey's is; `contains` and `sentenceCount` read an empty
text as it is. regexMatch runs RE2 over the whole text: linear time whatever the pattern.
"""

from __future__ import annotations

import string
from typing import Any

from gateway.guardrails.checks import excerpt, failed, flip
from gateway.guardrails.event import Subject
from gateway.guardrails.hooks import Check
from gateway.guardrails.results import CheckOutcome
from gateway.regex.literals import cannot_match, required_literals

_LOWER = frozenset(string.ascii_lowercase)
_UPPER = frozenset(string.ascii_uppercase)
# JavaScript's ASCII whitespace (\s) other than the space, mapped to spaces.
_SPACES = bytes.maketrans(b"\t\n\x0b\x0c\r", b"     ")


def _which(verdict: bool, invert: bool) -> int:
    """Which explanation applies, as an index into (passed, passed as inverted, failed as
    inverted, failed): checks with fixed texts index a tuple of them, and format only the one
    given."""
    return (1 if invert else 0) if verdict else (2 if invert else 3)


def _explain(verdict: bool, invert: bool, passed: str, inverted_passed: str,
             inverted_failed: str, failed_: str) -> str:
    return (passed, inverted_passed, inverted_failed, failed_)[_which(verdict, invert)]


def regex_match(check: Check, subject: Subject) -> CheckOutcome:
    rule, invert = check.params["rule"], check.params["not"]
    text = subject.text
    if not text:
        return failed("Missing text to match", {
            "explanation": "An error occurred while processing the regex: Missing text to match",
            "regexPattern": rule, "not": invert, "textExcerpt": excerpt(text)})
    match = _search(check.compiled, rule, text)
    verdict = flip(match is not None, invert)
    details = None if match is None else {
        "matchedText": match.group(0), "index": match.start(),
        "groups": match.groupdict(), "captures": list(match.groups())}
    return CheckOutcome(verdict, {
        "regexPattern": rule, "not": invert, "verdict": verdict,
        "explanation": f"The regex pattern '{rule}' {_REGEX[_which(verdict, invert)]}",
        "matchDetails": details, "textExcerpt": excerpt(text)})


def _search(pattern: Any, rule: str, text: str) -> Any:
    """`pattern.search(text)`; None at once when the text lacks a literal every match holds
    (regex/literals.py). An ASCII text that does not match is told by its bytes, which RE2
    searches without mapping its offsets back to characters (a match is searched again as
    text, for those offsets)."""
    if cannot_match(required_literals(rule), text):
        return None
    if text.isascii() and pattern.search(text.encode()) is None:
        return None
    return pattern.search(text)


_REGEX = ("successfully matched the text.", "did not match the text as expected.",
          "matched the text when it should not have.", "did not match the text.")


_CONTAINS = {  # operator -> (passed, failed) explanations, made once
    operator: (f"Check passed for '{operator}' words. {passed}",
               f"Check failed for '{operator}' words. {failed_}")
    for operator, (passed, failed_) in {
        "any": ("At least one word was found.", "No words were found."),
        "all": ("All words were found.", "Some words were missing."),
        "none": ("No words were found.", "Some words were found."),
    }.items()
}


def contains(check: Check, subject: Subject) -> CheckOutcome:
    """Case-sensitive substring test of each word (an empty text is not an error)."""
    words, operator = check.params["words"], check.params["operator"]
    text = subject.text
    found: list[str] = []
    missing: list[str] = []
    for word in words:  # one scan of the text per word
        (found if word in text else missing).append(word)
    verdict = bool(found) if operator == "any" else not (missing if operator == "all" else found)
    return CheckOutcome(verdict, {
        "explanation": _CONTAINS[operator][0 if verdict else 1],
        "foundWords": found, "missingWords": missing, "operator": operator})


def _range(check: Check, count: int, low: str, high: str, noun: str,
           text: str) -> CheckOutcome:
    lo, hi, invert = check.params[low], check.params[high], check.params["not"]
    within = lo <= count <= hi
    verdict = flip(within, invert)
    where, tail = _RANGE[_which(verdict, invert)]
    return CheckOutcome(verdict, {
        _COUNT_KEYS[noun]: count, low: lo, high: hi, "not": invert, "verdict": verdict,
        "explanation": f"The text contains {count} {noun}, which is {where} the specified "
                       f"range of {lo}-{hi} {noun}{tail}",
        "textExcerpt": excerpt(text)})


_COUNT_KEYS = {"words": "wordCount", "characters": "characterCount"}
_RANGE = (("within", "."), ("outside", " as expected."), ("within", " when it should not be."),
          ("outside", "."))


def count_words(text: str) -> int:
    """Words of a stripped, non-empty text, split on runs of whitespace.

    `str.split` builds every word; ASCII text whose words are one whitespace apart (most
    prose) is counted from its spaces instead, three times faster on a 2 KB message, and
    faster still when its only whitespace is the space (nothing to map).
    """
    if text.isascii():
        if "\n" not in text and "\t" not in text and "\r" not in text \
                and "\x0b" not in text and "\x0c" not in text and "  " not in text:
            return text.count(" ") + 1
        spaced = text.encode().translate(_SPACES)
        if spaced.find(b"  ") < 0:  # (find: bytes' `in` raises and drops a TypeError first)
            return spaced.count(b" ") + 1
    return len(text.split())


def word_count(check: Check, subject: Subject) -> CheckOutcome:
    text = subject.text.strip()
    if not text:
        return failed("Missing text to analyze", {
            "explanation": "An error occurred while processing word count: "
                           "Missing text to analyze",
            "minWords": check.params["minWords"], "maxWords": check.params["maxWords"],
            "not": check.params["not"], "textExcerpt": excerpt(subject.text)})
    return _range(check, count_words(text), "minWords", "maxWords", "words", text)


def character_count(check: Check, subject: Subject) -> CheckOutcome:
    """JavaScript's length: UTF-16 code units (an emoji counts two)."""
    text = subject.text
    if not text:
        return failed("Missing text to analyze", {
            "explanation": "An error occurred while counting characters: "
                           "Missing text to analyze",
            "minCharacters": check.params["minCharacters"],
            "maxCharacters": check.params["maxCharacters"],
            "not": check.params["not"], "textExcerpt": excerpt(text)})
    count = len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2
    return _range(check, count, "minCharacters", "maxCharacters", "characters", text)


def sentence_count(check: Check, subject: Subject) -> CheckOutcome:
    """Portkey counts `.`, `!` and `?` characters: "Hello world" has 0 sentences."""
    text = subject.text
    count = text.count(".") + text.count("!") + text.count("?")
    lo, hi, invert = check.params["minSentences"], check.params["maxSentences"], \
        check.params["not"]
    verdict = flip(lo <= count <= hi, invert)
    said = f"The sentence count ({count}) is "
    inside, outside = f"within the specified range of {lo} to {hi}", \
        f"outside the specified range of {lo} to {hi}"
    return CheckOutcome(verdict, {
        "sentenceCount": count, "minCount": lo, "maxCount": hi, "not": invert,
        "verdict": verdict,
        "explanation": said + _explain(verdict, invert, f"{inside}.", f"{outside} as expected.",
                                       f"{inside} when it should not be.", f"{outside}."),
        "textExcerpt": text[:100] + "..." if len(text) > 100 else text})


def _letter_case(check: Check, subject: Subject, upper: bool) -> CheckOutcome:
    """Only ASCII letters count, as in Portkey: a text without letters passes."""
    text, invert = subject.text, check.params["not"]
    name = "uppercase" if upper else "lowercase"
    other = "lowercase" if upper else "uppercase"
    if not text:
        return failed("Missing text to analyze", {
            "explanation": f"An error occurred while checking {name}: Missing text to analyze",
            "not": invert, "textExcerpt": excerpt(text)})
    holds = (_LOWER if upper else _UPPER).isdisjoint(text)
    verdict = flip(holds, invert)
    return CheckOutcome(verdict, {
        "verdict": verdict, "not": invert,
        "explanation": _explain(
            verdict, invert, f"All alphabetic characters in the text are {name}.",
            f"The text contains {other} characters as expected.",
            f"All alphabetic characters in the text are {name} when they should not be.",
            f"The text contains {other} characters."),
        "textExcerpt": excerpt(text)})


def all_uppercase(check: Check, subject: Subject) -> CheckOutcome:
    return _letter_case(check, subject, upper=True)


def all_lowercase(check: Check, subject: Subject) -> CheckOutcome:
    return _letter_case(check, subject, upper=False)


def ends_with(check: Check, subject: Subject) -> CheckOutcome:
    """The text ends with the suffix, or with the suffix and a period; nothing is trimmed."""
    suffix, invert, text = check.params["suffix"], check.params["not"], subject.text
    if not text:
        return failed("Missing text to analyze", {
            "explanation": "An error occurred while checking suffix: Missing text to analyze",
            "suffix": suffix, "not": invert, "textExcerpt": excerpt(text)})
    with_period = text.endswith(f"{suffix}.")
    verdict = flip(text.endswith(suffix) or with_period, invert)
    period = " (including trailing period)" if with_period else ""
    return CheckOutcome(verdict, {
        "suffix": suffix, "not": invert, "verdict": verdict,
        "explanation": _explain(
            verdict, invert, f'The text ends with "{suffix}"{period}.',
            f'The text does not end with "{suffix}" as expected.',
            f'The text ends with "{suffix}" when it should not.',
            f'The text does not end with "{suffix}".'),
        "textExcerpt": excerpt(text)})


def not_null(check: Check, subject: Subject) -> CheckOutcome:
    """Null: no content, a blank string, an empty list, or only empty text parts."""
    part, invert = subject.part, check.params["not"]
    content = part.content
    is_null = (content is None or (isinstance(content, str) and not content.strip())
               or (isinstance(content, list) and not content)
               or all(not t or not t.strip() for t in part.texts))
    verdict = is_null if invert else not is_null
    kind = "null" if content is None else "string" if isinstance(content, str) else "object"
    return CheckOutcome(verdict, {
        "isNull": is_null, "contentType": kind, "textArrayLength": len(part.texts),
        "explanation": "Content is null, undefined, or empty." if is_null
        else "Content exists and is not null.",
        "verdict": "passed" if verdict else "failed"})
