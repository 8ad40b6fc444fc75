"""regexReplace (and its PII preset) and addPrefix; addPrefix with Portkey's expectations."""

from __future__ import annotations

from typing import Any

from gateway.guardrails.checks.pii import iban, luhn
from gateway.guardrails.results import CheckOutcome
from tests.gateway.guardrails.build import after, before, chat_request, check, problems_of, run_on


def replace(body: dict[str, Any], request_type: str = "chatComplete",
            **params: Any) -> CheckOutcome:
    return run_on(check("default.regexReplace", **params), before(body, request_type))


# --- regexReplace -------------------------------------------------------------------------

def test_regex_replace_redacts_every_match_and_leaves_the_input_alone() -> None:
    body = chat_request("call 555-0100 or 555-0199")
    result = replace(body, rule=r"\d{3}-\d{4}")
    assert result.verdict is True and result.transformed is True
    assert result.json is not None
    assert result.json["messages"][-1]["content"] == "call [REDACTED] or [REDACTED]"
    assert body["messages"][-1]["content"] == "call 555-0100 or 555-0199"
    assert result.data["explanation"] == \
        "Pattern '\\d{3}-\\d{4}' matched and was replaced with '[REDACTED]'"


def test_regex_replace_slash_form_flags_and_literal_replacement() -> None:
    result = replace(chat_request("Secret and SECRET"), rule="/secret/gi", redactText="$1")
    assert result.json is not None
    assert result.json["messages"][-1]["content"] == "$1 and $1"


def test_regex_replace_text_parts_and_other_parts() -> None:
    body = chat_request([{"type": "image_url", "image_url": {"url": "https://x.example/a"}},
                         {"type": "text", "text": "mail bob@example.com"}])
    result = replace(body, rule=r"\S+@\S+")
    assert result.json is not None
    assert result.json["messages"][-1]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://x.example/a"}},
        {"type": "text", "text": "mail [REDACTED]"}]


def test_regex_replace_no_match_and_fail_on_detection() -> None:
    clean = replace(chat_request("nothing here"), rule=r"\d+")
    assert clean.verdict is True and clean.json is None and clean.transformed is False
    assert clean.data["explanation"] == "The regex pattern '\\d+' did not match any text."
    flagged = replace(chat_request("pin 1234"), rule=r"\d+", failOnDetection=True)
    assert flagged.verdict is False and flagged.transformed is True


def test_regex_replace_on_answers_and_completions() -> None:
    answer = run_on(check("default.regexReplace", rule="damn"), after("well damn it"))
    assert answer.json is not None
    assert answer.json["choices"][0]["message"]["content"] == "well [REDACTED] it"
    prompt = replace({"model": "m", "prompt": ["a 42", "b"]}, "complete", rule=r"\d+")
    assert prompt.json is not None and prompt.json["prompt"] == ["a [REDACTED]", "b"]


def test_regex_replace_missing_text_is_an_error() -> None:
    result = replace(chat_request(""), rule="x")
    assert result.error is not None and result.error.message == "Missing text to match"


def test_regex_replace_rule_problems() -> None:
    def problems(params: dict[str, Any]) -> list[str]:
        return problems_of("input_mutators", [{"regexReplace": params}])

    assert problems({}) == ["input_mutators[0].regexReplace.rule: is required (or give a "
                            "preset)"]
    assert problems({"rule": "/a/y"}) == [
        "input_mutators[0].regexReplace.rule: invalid regular expression: the sticky flag "
        "'y' is not supported"]
    assert "lookarounds" in problems({"rule": "/(?<=a)b/g"})[0]
    assert problems({"preset": "pii,passport"}) == [
        "input_mutators[0].regexReplace.preset: unknown preset 'passport'; presets: pii, "
        "email, phone, credit_card, iban, api_key"]


# --- the PII preset -----------------------------------------------------------------------

PII = ("Mail jane.doe@example.co.uk or call +44 20 7946 0958 / (415) 555-0134. "
       "Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, "
       "key sk-proj-abcdefghijklmnopqrstuvwxyz012345 and AKIAIOSFODNN7EXAMPLE.")


def test_pii_preset_redacts_each_kind() -> None:
    result = replace(chat_request(PII), preset="pii", redactText="[PII]")
    assert result.json is not None
    text = result.json["messages"][-1]["content"]
    assert text == ("Mail [PII] or call [PII] / [PII]. Card [PII], IBAN [PII], key [PII] "
                    "and [PII].")
    assert result.data["detected"] == {"email": 1, "phone": 2, "credit_card": 1, "iban": 1,
                                       "api_key": 2}


def test_pii_checksums_spare_lookalikes() -> None:
    text = "order 4111 1111 1111 1112 and ref DE89 3704 0044 0532 0130 02 in 2024"
    result = replace(chat_request(text), preset=["credit_card", "iban"])
    assert result.json is None and result.data["detected"] == {}
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert iban("GB82 WEST 1234 5698 7654 32") and not iban("GB82 WEST 1234 5698 7654 33")


def test_pii_preset_with_a_rule_of_ones_own() -> None:
    result = replace(chat_request("ticket T-1234 from a@b.io"), rule=r"T-\d+", preset="email")
    assert result.json is not None
    assert result.json["messages"][-1]["content"] == "ticket [REDACTED] from [REDACTED]"


# --- addPrefix ----------------------------------------------------------------------------

def prefix(body: dict[str, Any], request_type: str = "chatComplete",
           **params: Any) -> CheckOutcome:
    return run_on(check("default.addPrefix", **params), before(body, request_type))


def messages(*pairs: tuple[str, Any]) -> dict[str, Any]:
    return {"model": "gpt-4", "messages": [{"role": r, "content": c} for r, c in pairs]}


def test_add_prefix_to_the_user_message() -> None:
    result = prefix(messages(("system", "You are a helpful assistant."),
                             ("user", "Hello, how are you?")), prefix="IMPORTANT: ")
    assert result.verdict is True and result.transformed is True and result.error is None
    assert result.json is not None
    assert result.json["messages"][1]["content"] == "IMPORTANT: Hello, how are you?"
    assert result.data == {"prefix": "IMPORTANT: ", "requestType": "chatComplete",
                           "applyToRole": "user", "addToExisting": True, "onlyIfEmpty": False}


def test_add_prefix_to_the_system_message_or_a_new_one() -> None:
    system = prefix(messages(("system", "You are a helpful assistant."), ("user", "Hello!")),
                    prefix="CRITICAL: ", applyToRole="system")
    assert system.json is not None
    assert system.json["messages"][0]["content"] == "CRITICAL: You are a helpful assistant."
    new_user = prefix(messages(("system", "S")), prefix="PREFIX: ")
    assert new_user.json is not None
    assert new_user.json["messages"] == [{"role": "system", "content": "S"},
                                         {"role": "user", "content": "PREFIX: "}]
    new_system = prefix(messages(("user", "Hello!")), prefix="SYSTEM PREFIX: ",
                        applyToRole="system")
    assert new_system.json is not None
    assert new_system.json["messages"][0] == {"role": "system", "content": "SYSTEM PREFIX: "}


def test_add_prefix_as_a_new_message_and_only_if_empty() -> None:
    inserted = prefix(messages(("system", "S"), ("user", "Hello!")), prefix="PREFIX: ",
                      addToExisting=False)
    assert inserted.json is not None
    assert inserted.json["messages"][1:] == [{"role": "user", "content": "PREFIX: "},
                                             {"role": "user", "content": "Hello!"}]
    kept = prefix(messages(("user", "Existing content")), prefix="PREFIX: ", onlyIfEmpty=True)
    assert kept.transformed is True and kept.json is not None
    assert kept.json["messages"][0]["content"] == "Existing content"
    filled = prefix(messages(("user", "")), prefix="PREFIX: ", onlyIfEmpty=True)
    assert filled.json is not None and filled.json["messages"][0]["content"] == "PREFIX: "


def test_add_prefix_first_message_of_the_role() -> None:
    result = prefix(messages(("user", "First message"), ("assistant", "Response"),
                             ("user", "Second message")), prefix="PREFIX: ")
    assert result.json is not None
    assert result.json["messages"][0]["content"] == "PREFIX: First message"
    assert result.json["messages"][2]["content"] == "Second message"
    assistant = prefix(messages(("user", "Hello"), ("assistant", "Hi there!")),
                       prefix="As an AI assistant: ", applyToRole="assistant")
    assert assistant.json is not None
    assert assistant.json["messages"][1]["content"] == "As an AI assistant: Hi there!"


def test_add_prefix_anthropic_messages() -> None:
    body = {"model": "claude-3-opus-20240229", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "First block"},
                                     {"type": "text", "text": "Second block"}],
         "metadata": {"custom": "value"}}]}
    result = prefix(body, "messages", prefix="PREFIX: ")
    assert result.json is not None
    content = result.json["messages"][0]["content"]
    assert content == [{"type": "text", "text": "PREFIX: First block"},
                       {"type": "text", "text": "Second block"}]
    assert result.json["messages"][0]["metadata"] == {"custom": "value"}


def test_add_prefix_anthropic_image_first_and_new_messages() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/i.jpg"}}
    body = {"model": "c", "messages": [
        {"role": "user", "content": [image, {"type": "text", "text": "What is in it?"}]}]}
    result = prefix(body, "messages", prefix="Analyze carefully: ")
    assert result.json is not None
    content = result.json["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "Analyze carefully: "} and len(content) == 3
    empty = prefix({"model": "c", "system": "S", "messages": []}, "messages",
                   prefix="User instruction: ")
    assert empty.json is not None
    assert empty.json["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "User instruction: "}]}]
    inserted = prefix({"model": "c", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Original message"}]}]},
        "messages", prefix="Prefix message", addToExisting=False)
    assert inserted.json is not None
    assert inserted.json["messages"][0] == {
        "role": "user", "content": [{"type": "text", "text": "Prefix message"}]}


def test_add_prefix_completion_prompt() -> None:
    result = prefix({"model": "gpt-3.5-turbo-instruct", "prompt": "Write a story about a dog."},
                    "complete", prefix="IMPORTANT: ")
    assert result.json is not None
    assert result.json["prompt"] == "IMPORTANT: Write a story about a dog."


def test_add_prefix_is_a_no_op_after_the_request_and_for_embeddings() -> None:
    late = run_on(check("default.addPrefix", prefix="PREFIX: "), after("hello"))
    assert late.verdict is True and late.transformed is False and late.data is None
    embed = prefix({"model": "text-embedding-3-small", "input": "Hello world"}, "embed",
                   prefix="PREFIX: ")
    assert embed.transformed is False and embed.data is None


def test_add_prefix_parameters() -> None:
    assert problems_of("input_mutators", [{"addPrefix": {}}]) == [
        "input_mutators[0].addPrefix.prefix: is required"]
    assert problems_of("input_mutators", [{"addPrefix": {"prefix": 123}}]) == [
        "input_mutators[0].addPrefix.prefix: must be a string"]
