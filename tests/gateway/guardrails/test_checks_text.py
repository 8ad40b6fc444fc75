"""Text checks, with Portkey's expectations (plugins/default/default.test.ts) as ours.

Portkey's tests build `{response: {text}}` contexts; its plugins read the answer JSON, so here
the text is a chat answer's content. Where Portkey's plugin errors at run time on a bad
parameter, this gateway refuses the config instead (test_config.py covers those).
"""

from __future__ import annotations

from gateway.guardrails.checks.text import count_words
from tests.gateway.guardrails.build import after, check, problems_of, run, run_on

FOX = "The quick brown fox jumps over the lazy dog."


# --- regexMatch ---------------------------------------------------------------------------

def test_regex_match_simple_pattern() -> None:
    result = run("default.regexMatch", FOX, rule="quick.*fox")
    assert result.verdict is True and result.error is None
    assert "successfully matched" in result.data["explanation"]
    assert result.data["matchDetails"]["matchedText"] == "quick brown fox"


def test_regex_match_no_match() -> None:
    result = run("default.regexMatch", FOX, rule="zebra")
    assert result.verdict is False and result.error is None
    assert "did not match" in result.data["explanation"]
    assert result.data["matchDetails"] is None


def test_regex_match_capturing_and_named_groups() -> None:
    captures = run("default.regexMatch", FOX, rule="(quick) (brown) (fox)")
    assert captures.data["matchDetails"]["captures"] == ["quick", "brown", "fox"]
    assert captures.data["matchDetails"]["groups"] == {}
    named = run("default.regexMatch", FOX,
                rule="(?<adjective1>quick) (?<adjective2>brown) (?<animal>fox)")
    assert named.data["matchDetails"]["groups"] == {
        "adjective1": "quick", "adjective2": "brown", "animal": "fox"}
    assert named.data["matchDetails"]["index"] == 4


def test_regex_match_excerpt_and_truncation() -> None:
    assert run("default.regexMatch", FOX, rule="dog").data["textExcerpt"] == FOX
    long = run("default.regexMatch", "a" * 200, rule="a")
    assert long.data["textExcerpt"] == "a" * 100 + "..."


def test_regex_match_not_inverts() -> None:
    result = run("default.regexMatch", FOX, rule="zebra", **{"not": True})
    assert result.verdict is True
    assert result.data["explanation"] == \
        "The regex pattern 'zebra' did not match the text as expected."
    assert run("default.regexMatch", FOX, rule="fox", **{"not": True}).verdict is False


def test_regex_match_missing_text_is_an_error() -> None:
    result = run("default.regexMatch", "", rule="test")
    assert result.verdict is False and result.error is not None
    assert "Missing text to match" in result.data["explanation"]


def test_regex_match_reads_past_the_first_kilobytes() -> None:
    """Unlike routing's $regex (a bounded head), a guardrail scans the whole text."""
    assert run("default.regexMatch", "x" * 100_000 + " secret", rule="secret").verdict is True


def test_regex_match_bad_patterns_are_config_problems() -> None:
    assert problems_of("input_guardrails", [{"regexMatch": {"rule": "("}}])[0].startswith(
        "input_guardrails[0].regexMatch.rule: invalid regular expression")
    assert problems_of("input_guardrails", [{"regexMatch": {"rule": ""}}]) == [
        "input_guardrails[0].regexMatch.rule: must not be empty"]
    assert problems_of("input_guardrails", [{"regexMatch": {}}]) == [
        "input_guardrails[0].regexMatch.rule: is required"]


# --- contains -----------------------------------------------------------------------------

TEXT = "adding some text before this word1 and adding some text after"


def test_contains_any() -> None:
    result = run("default.contains", TEXT, words=["word1", "word2"], operator="any")
    assert result.verdict is True and result.error is None
    assert result.data == {
        "explanation": "Check passed for 'any' words. At least one word was found.",
        "foundWords": ["word1"], "missingWords": ["word2"], "operator": "any"}


def test_contains_all() -> None:
    result = run("default.contains", TEXT, words=["word1", "word2"], operator="all")
    assert result.verdict is False and result.error is None
    assert result.data == {
        "explanation": "Check failed for 'all' words. Some words were missing.",
        "foundWords": ["word1"], "missingWords": ["word2"], "operator": "all"}


def test_contains_none() -> None:
    result = run("default.contains", TEXT, words=["word2", "word3"], operator="none")
    assert result.verdict is True
    assert result.data == {
        "explanation": "Check passed for 'none' words. No words were found.",
        "foundWords": [], "missingWords": ["word2", "word3"], "operator": "none"}
    found = run("default.contains", TEXT, words=["word1"], operator="none")
    assert found.verdict is False
    assert found.data["explanation"] == "Check failed for 'none' words. Some words were found."


def test_contains_empty_word_list() -> None:
    result = run("default.contains", "some text", words=[], operator="any")
    assert result.verdict is False
    assert result.data == {
        "explanation": "Check failed for 'any' words. No words were found.",
        "foundWords": [], "missingWords": [], "operator": "any"}


def test_contains_is_case_sensitive() -> None:
    result = run("default.contains",
                 "Adding some TEXT before this Word1 and adding some text after",
                 words=["text", "word1"], operator="all")
    assert result.verdict is False
    assert result.data["foundWords"] == ["text"] and result.data["missingWords"] == ["word1"]


def test_contains_on_empty_text_is_not_an_error() -> None:
    result = run("default.contains", "", words=["x"], operator="none")
    assert result.verdict is True and result.error is None


# --- wordCount ----------------------------------------------------------------------------

SEVEN = "This is a sentence with 7 words."


def test_word_count_in_range() -> None:
    result = run("default.wordCount", SEVEN, minWords=5, maxWords=8)
    assert result.verdict is True and result.error is None
    assert result.data == {
        "wordCount": 7, "minWords": 5, "maxWords": 8, "not": False, "verdict": True,
        "explanation": "The text contains 7 words, which is within the specified range "
                       "of 5-8 words.",
        "textExcerpt": SEVEN}


def test_word_count_out_of_range() -> None:
    result = run("default.wordCount", SEVEN, minWords=10, maxWords=15)
    assert result.verdict is False
    assert result.data["explanation"] == ("The text contains 7 words, which is outside the "
                                          "specified range of 10-15 words.")


def test_word_count_long_text() -> None:
    result = run("default.wordCount", "word " * 50, minWords=40, maxWords=60)
    assert result.verdict is True and result.data["wordCount"] == 50
    assert len(result.data["textExcerpt"]) <= 103
    assert result.data["textExcerpt"].endswith("...")


def test_word_count_missing_or_blank_text_is_an_error() -> None:
    empty = run("default.wordCount", "", minWords=1, maxWords=5)
    assert empty.error is not None and empty.error.message == "Missing text to analyze"
    assert empty.verdict is False
    assert empty.data == {
        "explanation": "An error occurred while processing word count: Missing text to analyze",
        "minWords": 1, "maxWords": 5, "not": False, "textExcerpt": "No text available"}
    blank = run("default.wordCount", "   \n\t   ", minWords=1, maxWords=10)
    assert blank.error is not None and blank.data["textExcerpt"] == "   \n\t   "


def test_word_count_defaults_are_the_manifests() -> None:
    """Portkey errors (fail-open) when a bound is missing; here the manifest's defaults
    apply, so `{"maxWords": 3}` really limits the answer."""
    assert run("default.wordCount", "one two three four", maxWords=3).verdict is False
    assert run("default.wordCount", "one two", maxWords=3).verdict is True


def test_word_count_bounds_must_be_integers() -> None:
    assert problems_of("output_guardrails", [{"wordCount": {"minWords": "invalid"}}]) == [
        "output_guardrails[0].wordCount.minWords: must be an integer"]
    assert problems_of("output_guardrails", [{"wordCount": {"minWords": 9, "maxWords": 3}}]) \
        == ["output_guardrails[0].wordCount.minWords: must be <= maxWords (3)"]
    assert check("default.wordCount", minWords=2.0).params["minWords"] == 2


# --- sentenceCount ------------------------------------------------------------------------

TWO = "This is a sentence. This is another sentence."


def test_sentence_count_in_range() -> None:
    result = run("default.sentenceCount", TWO, minSentences=1, maxSentences=3)
    assert result.verdict is True
    assert result.data == {
        "sentenceCount": 2, "minCount": 1, "maxCount": 3, "not": False, "verdict": True,
        "explanation": "The sentence count (2) is within the specified range of 1 to 3.",
        "textExcerpt": TWO}


def test_sentence_count_out_of_range() -> None:
    result = run("default.sentenceCount", TWO, minSentences=3, maxSentences=4)
    assert result.verdict is False
    assert result.data["explanation"] == \
        "The sentence count (2) is outside the specified range of 3 to 4."


def test_sentence_count_counts_terminators_and_reads_empty_text() -> None:
    assert run("default.sentenceCount", "Hello world", minSentences=1).verdict is False
    empty = run("default.sentenceCount", "", minSentences=1, maxSentences=3)
    assert empty.verdict is False and empty.error is None
    assert empty.data["sentenceCount"] == 0 and empty.data["textExcerpt"] == ""
    long = run("default.sentenceCount", "This is a sentence. " * 20, minSentences=1,
               maxSentences=30)
    assert long.verdict is True and long.data["textExcerpt"].endswith("...")


# --- characterCount -----------------------------------------------------------------------

def test_character_count_in_and_out_of_range() -> None:
    inside = run("default.characterCount", "This is a test.", minCharacters=10,
                 maxCharacters=20)
    assert inside.verdict is True and inside.data["characterCount"] == 15
    assert inside.data["explanation"] == ("The text contains 15 characters, which is within "
                                          "the specified range of 10-20 characters.")
    outside = run("default.characterCount", "This is a very long test that exceeds the limit.",
                  minCharacters=10, maxCharacters=20)
    assert outside.verdict is False and outside.data["characterCount"] == 48


def test_character_count_whitespace_counts_and_empty_is_an_error() -> None:
    blank = run("default.characterCount", "   \n\t   ", minCharacters=1, maxCharacters=10)
    assert blank.verdict is True and blank.data["characterCount"] == 8
    empty = run("default.characterCount", "", minCharacters=1, maxCharacters=10)
    assert empty.error is not None and empty.error.message == "Missing text to analyze"


def test_character_count_is_javascripts_length() -> None:
    assert run("default.characterCount", "ok 👍", maxCharacters=4).data["characterCount"] == 5


# --- alluppercase / alllowercase ---------------------------------------------------------

def test_all_uppercase() -> None:
    upper = run("default.alluppercase", "THIS IS ALL UPPERCASE TEXT!")
    assert upper.verdict is True
    assert upper.data == {"verdict": True, "not": False,
                          "explanation": "All alphabetic characters in the text are uppercase.",
                          "textExcerpt": "THIS IS ALL UPPERCASE TEXT!"}
    mixed = run("default.alluppercase", "This Has Mixed Case.")
    assert mixed.verdict is False
    assert mixed.data["explanation"] == "The text contains lowercase characters."
    assert run("default.alluppercase", "123 !@#$%").verdict is True
    assert run("default.alluppercase", "A" * 150).data["textExcerpt"].endswith("...")
    empty = run("default.alluppercase", "")
    assert empty.error is not None and empty.data == {
        "explanation": "An error occurred while checking uppercase: Missing text to analyze",
        "not": False, "textExcerpt": "No text available"}


def test_all_lowercase() -> None:
    assert run("default.alllowercase", "this is all lowercase text!").verdict is True
    mixed = run("default.alllowercase", "This Has Mixed Case.")
    assert mixed.verdict is False
    assert mixed.data["explanation"] == "The text contains uppercase characters."
    assert run("default.alllowercase", "123 !@#$%").verdict is True
    assert run("default.alllowercase", "This", **{"not": True}).verdict is True


# --- endsWith -----------------------------------------------------------------------------

def test_ends_with() -> None:
    plain = run("default.endsWith", "This is a test ending with HarryPortkey",
                suffix="HarryPortkey")
    assert plain.verdict is True
    assert plain.data["explanation"] == 'The text ends with "HarryPortkey".'
    period = run("default.endsWith", "This is a test ending with HarryPortkey.",
                 suffix="HarryPortkey")
    assert period.verdict is True
    assert period.data["explanation"] == \
        'The text ends with "HarryPortkey" (including trailing period).'
    other = run("default.endsWith", "This is a test ending with something else",
                suffix="HarryPortkey")
    assert other.verdict is False
    assert other.data["explanation"] == 'The text does not end with "HarryPortkey".'
    empty = run("default.endsWith", "", suffix="test")
    assert empty.error is not None and empty.error.message == "Missing text to analyze"


def test_ends_with_needs_a_suffix() -> None:
    assert problems_of("output_guardrails", [{"endsWith": {}}]) == [
        "output_guardrails[0].endsWith.suffix: is required"]
    assert problems_of("output_guardrails", [{"endsWith": {"suffix": ""}}]) == [
        "output_guardrails[0].endsWith.suffix: must not be empty"]


# --- notNull ------------------------------------------------------------------------------

def test_not_null_on_chat_answers() -> None:
    present = run("default.notNull", "Hello! How can I help you?")
    assert present.verdict is True and present.data["isNull"] is False
    assert "exists and is not null" in present.data["explanation"]
    for empty in (None, "", "   "):
        result = run("default.notNull", empty)
        assert result.verdict is False and result.data["isNull"] is True, empty
    assert "null, undefined, or empty" in run("default.notNull", None).data["explanation"]


def test_not_null_inverted() -> None:
    assert run("default.notNull", None, **{"not": True}).verdict is True
    assert run("default.notNull", "Hello!", **{"not": True}).verdict is False


def test_not_null_on_completions_messages_and_streams() -> None:
    built = check("default.notNull")
    assert run_on(built, after({"choices": [{"text": "Generated"}]}, "complete")).verdict
    assert not run_on(built, after({"choices": [{"text": None}]}, "complete")).verdict
    assert run_on(built, after({"content": [{"type": "text", "text": "Hello from Claude!"}]},
                               "messages")).verdict
    assert not run_on(built, after({"content": []}, "messages")).verdict
    streamed = after(None, "complete")  # a stream's answer is not assembled: no JSON
    assert run_on(built, streamed).data["isNull"] is True


def test_word_counting_agrees_with_splitting_on_whitespace() -> None:
    for text in ("one", "a b c", "a  b", "a\tb\nc\r\nd", "tab\t\tgap", "héllo wörld x",
                 "x\u00a0y z", "end."):
        assert count_words(text) == len(text.split()), text
