"""Echoes of secrets in a text, found and replaced: the text-only half of redaction.

An echo is found whatever its ASCII letter case (an upstream may upper-case what it quotes)
and in base64 too (standard or URL-safe, padded or not, alone or inside a longer encoded
text such as `Bearer <key>` or Basic auth's `user:key`). A leaf package: it knows texts and
secrets, nothing of requests, so any part of the gateway (security, guardrails) can use it.
"""

from __future__ import annotations

import base64
import bisect
import re
import string
from collections.abc import Iterable, Iterator

REDACTED = "[REDACTED]"
# An echo this long of any known secret is removed (a key's first chars, "****" and its last
# four, as providers print them, stay).
MIN_ECHO = 12
# Values shorter than this are not treated as secrets: redacting "test" would garble messages.
MIN_SECRET = 8
# ASCII letters folded to lower case; every other char kept, so spans in a folded text are
# spans in the original (str.lower can change a non-ASCII text's length).
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# Chars of base64(prefix + secret) that depend on a prefix of 0, 1 or 2 bytes (mod 3).
_PREFIX_CHARS = (0, 2, 3)
_URLSAFE = str.maketrans("-_", "+/")
_BASE64_RUN = re.compile(rf"[a-z0-9+/_-]{{{MIN_SECRET},}}")  # in a folded text


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret, and every echo of MIN_ECHO chars or more of one, replaced:
    in any ASCII case, and in base64 (`encoded_forms`)."""
    spans: list[tuple[int, int]] = []
    folded = _fold(text)
    runs = _Runs(folded)
    for secret in secrets:
        if len(secret) >= MIN_SECRET:
            spans.extend(_echoes(folded, _fold(secret)))
            if runs.text:
                for form in encoded_forms(secret):
                    spans.extend(runs.spans(_echoes(runs.text, _fold(form))))
    if not spans:
        return text
    spans.sort()
    merged = [list(spans[0])]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts: list[str] = []
    last = 0
    for start, end in merged:
        parts += (text[last:start], REDACTED)
        last = end
    parts.append(text[last:])
    return "".join(parts)


class _Runs:
    """The runs of base64 chars (MIN_SECRET or more) of a text, joined by NUL into `text`,
    where encoded secrets are searched: a base64 echo lies within one run, and most error
    text (words, JSON punctuation) is left out of the search. The URL-safe alphabet is read
    as the standard one: one search finds either encoding."""

    __slots__ = ("starts", "joined_starts", "text")

    def __init__(self, folded: str) -> None:
        self.starts: list[int] = []
        self.joined_starts: list[int] = []
        pieces, at = [], 0
        for match in _BASE64_RUN.finditer(folded):
            self.starts.append(match.start())
            self.joined_starts.append(at)
            pieces.append(match.group())
            at += len(match.group()) + 1
        self.text = "\0".join(pieces).translate(_URLSAFE)

    def spans(self, found: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
        """Spans of `text` as spans of the original text (none crosses a NUL)."""
        for start, end in found:
            run = bisect.bisect_right(self.joined_starts, start) - 1
            shift = self.starts[run] - self.joined_starts[run]
            yield start + shift, end + shift


def _fold(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def encoded_forms(secret: str) -> list[str]:
    """The base64 texts that any base64 of a text containing `secret` contains: for each of
    the three alignments of the secret in the encoded bytes (it may follow "Bearer ",
    "user:", ...), the chars that encode the secret's bytes alone (those shared with the
    bytes around it, and the padding, left out), in the standard alphabet (`redact` reads
    the URL-safe one as it). Only the forms of at least MIN_SECRET chars."""
    raw = secret.encode()
    forms = []
    for prefix, drop in enumerate(_PREFIX_CHARS):
        encoded = base64.b64encode(bytes(prefix) + raw).decode().rstrip("=")[drop:]
        if (prefix + len(raw)) % 3:
            encoded = encoded[:-1]  # its last char is shared with whatever bytes follow
        if len(encoded) >= MIN_SECRET:
            forms.append(encoded)
    return forms


def _echoes(text: str, secret: str) -> Iterator[tuple[int, int]]:
    """Spans of `text` equal to a substring of `secret` at least MIN_ECHO long (or all of it).

    Any such substring contains a whole aligned block of MIN_ECHO // 2 chars of the secret,
    so only those blocks are searched for (in C, by str.find), then each hit is widened.
    """
    if len(secret) < MIN_ECHO:
        at = text.find(secret)
        while at != -1:
            yield at, at + len(secret)
            at = text.find(secret, at + len(secret))
        return
    block = MIN_ECHO // 2
    for offset in range(0, len(secret) - block + 1, block):
        at = text.find(secret[offset:offset + block])
        while at != -1:
            start, first = at, offset
            while start and first and text[start - 1] == secret[first - 1]:
                start, first = start - 1, first - 1
            end, last = at + block, offset + block
            while end < len(text) and last < len(secret) and text[end] == secret[last]:
                end, last = end + 1, last + 1
            if end - start >= MIN_ECHO:
                yield start, end
            at = text.find(secret[offset:offset + block], at + 1)
