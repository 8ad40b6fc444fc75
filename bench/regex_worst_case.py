"""The slowest `$regex` match the gateway still accepts (gateway/regex/safe_regex.py).

RE2's cost per byte grows with the compiled program; the worst families found are those whose
DFA has exponentially many states (`[ab]*a[ab]{n}c` on random `a`/`b`): every byte of input
builds a new state of about n instructions. For each family, the largest n whose program fits
MAX_PROGRAM_SIZE is matched through `safe_regex.search` on a 32 MiB text (only its first
MAX_SEARCH_BYTES bytes are looked at), with fresh random text each time so no cached DFA state
helps; the median of the repeats, slowest family first.

    python -m bench.regex_worst_case [--repeats 15]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from gateway.regex import safe_regex

FAMILIES: dict[str, tuple[Callable[[int], str], str]] = {
    "exponential DFA, ASCII": (lambda n: f"[ab]*a[ab]{{{n}}}c", "ab"),
    "exponential DFA, 2-byte": (lambda n: f"[éà]*é[éà]{{{n}}}c", "éà"),
    "exponential DFA, 4-byte": (lambda n: f"[😀😁]*😀[😀😁]{{{n}}}c", "😀😁"),
    "exponential DFA, any": (lambda n: f"(?s).*😀.{{{n}}}c", "😀😁"),
    "exponential DFA, word": (lambda n: f"\\w*a\\w{{{n}}}!", "ab"),
    "alternation of them": (lambda n: "|".join(f"[ab]*a[ab]{{{k}}}c" for k in range(1, n)),
                            "ab"),
    "counted alternation": (lambda n: f"(a|aa|aaa|aaaa){{1,{n}}}b", "a"),
    "counted words": (lambda n: f"(\\w+\\s*){{1,{n}}}!", "word "),
}
TEXT_CHARS = 32 * 1024 * 1024 // 4  # a 32 MiB request body's worth of 4-byte characters


def largest(family: Callable[[int], str]) -> str | None:
    best = None
    for n in range(1, 2000):
        if safe_regex.problem(family(n)) is not None:
            break
        best = family(n)
    return best


def median_ms(pattern: str, alphabet: str, repeats: int) -> float:
    rng = random.Random(1)
    took = []
    for _ in range(repeats):
        head = "".join(rng.choice(alphabet) for _ in range(safe_regex.MAX_SEARCH_BYTES))
        text = head * (TEXT_CHARS // len(head))
        started = time.perf_counter()
        safe_regex.search(pattern, text)
        took.append(time.perf_counter() - started)
    return statistics.median(took) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rows = []
    for name, (family, alphabet) in FAMILIES.items():
        pattern = largest(family)
        if pattern is not None:
            rows.append((median_ms(pattern, alphabet, args.repeats), name, pattern))
    print(f"MAX_PROGRAM_SIZE={safe_regex.MAX_PROGRAM_SIZE} "
          f"MAX_SEARCH_BYTES={safe_regex.MAX_SEARCH_BYTES}")
    for ms, name, pattern in sorted(rows, reverse=True):
        size = safe_regex.program_size(pattern)
        shown = pattern if len(pattern) <= 40 else pattern[:37] + "..."
        print(f"{ms:7.2f} ms  {name:26} {size:4d} instructions  {shown}")


if __name__ == "__main__":
    main()
