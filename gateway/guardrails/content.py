"""What text a check reads, per dialect: one small getter and setter per request type.

Portkey's rule (plugins/utils.ts): before the request, the last message's content only
(chat and Anthropic Messages; system prompts and earlier turns are not read), the prompt
(completions) or the input (embeddings); after it, the first choice (chat, completions), every
content block (Messages) or every output text part (Responses, this gateway's own entry).
A content is a list of text parts: a string is one part; in a list of parts each part with a
string `text` is one, and others (images, tool calls) are `None`. Checks read the non-empty
parts joined by newlines; mutators hand back new texts, which the setter writes into a copy of
the body (the caller's body is never changed). A malformed body reads as no content at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Texts = tuple[str | None, ...]


@dataclass(slots=True)
class ContentPart:
    """Made for every phase a hook runs in: a slots dataclass, immutable by convention
    (results.py says why not frozen, nor a NamedTuple)."""

    content: Any  # the raw content: a string, a list of parts, None
    texts: Texts  # each part's text; None for a part without text

    @property
    def text(self) -> str:
        texts = self.texts
        if len(texts) == 1:  # a string content: the text itself, not a joined copy
            return texts[0] or ""
        return "\n".join(t for t in texts if t)


NO_CONTENT = ContentPart(None, ())
Getter = Callable[[Mapping[str, Any]], ContentPart]
Setter = Callable[[Mapping[str, Any], Sequence[str | None]], dict[str, Any]]


def _part_texts(content: Any) -> Texts:
    if isinstance(content, str) or content is None:
        return (content,)
    if isinstance(content, list):
        return tuple(p.get("text") if isinstance(p, dict) and isinstance(p.get("text"), str)
                     else None for p in content)
    return (None,)


def _with_texts(content: Any, texts: Sequence[str | None]) -> Any:
    """`content` with each text part replaced by its new text (None keeps the part)."""
    if isinstance(content, list):
        return [{**p, "text": t} if t is not None and isinstance(p, dict) and "text" in p else p
                for p, t in zip(content, texts, strict=False)] + content[len(texts):]
    new = texts[0] if texts else None
    return content if new is None else new


# --- requests -----------------------------------------------------------------------------

def _last_message(body: Mapping[str, Any]) -> ContentPart:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return NO_CONTENT
    content = messages[-1].get("content")
    return ContentPart(content, _part_texts(content))


def _set_last_message(body: Mapping[str, Any], texts: Sequence[str | None]) -> dict[str, Any]:
    messages = list(body["messages"])
    last = messages[-1]
    messages[-1] = {**last, "content": _with_texts(last.get("content"), texts)}
    return {**body, "messages": messages}


def _prompt(body: Mapping[str, Any]) -> ContentPart:
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        return ContentPart(prompt, tuple(p if isinstance(p, str) else None for p in prompt))
    return ContentPart(prompt, (prompt if isinstance(prompt, str) else None,))


def _set_prompt(body: Mapping[str, Any], texts: Sequence[str | None]) -> dict[str, Any]:
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        new = [t if t is not None else p for p, t in zip(prompt, texts, strict=False)]
        return {**body, "prompt": new + prompt[len(texts):]}
    return {**body, "prompt": texts[0] if texts and texts[0] is not None else prompt}


def _input(body: Mapping[str, Any]) -> ContentPart:
    value = body.get("input")
    if isinstance(value, list):
        return ContentPart(value, tuple(v if isinstance(v, str) else None for v in value))
    return ContentPart(value, (value if isinstance(value, str) else None,))


def _responses_input(body: Mapping[str, Any]) -> ContentPart:
    value = body.get("input")
    if isinstance(value, str):
        return ContentPart(value, (value,))
    if not isinstance(value, list) or not value or not isinstance(value[-1], dict):
        return NO_CONTENT
    content = value[-1].get("content")
    return ContentPart(content, _part_texts(content))


def _set_responses_input(body: Mapping[str, Any], texts: Sequence[str | None]) -> dict[str, Any]:
    value = body["input"]
    if isinstance(value, str):
        return {**body, "input": texts[0] if texts and texts[0] is not None else value}
    items = list(value)
    items[-1] = {**items[-1], "content": _with_texts(items[-1].get("content"), texts)}
    return {**body, "input": items}


# --- answers ------------------------------------------------------------------------------

def _first_choice(body: Mapping[str, Any]) -> dict[str, Any] | None:
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return None


def _choice_message(body: Mapping[str, Any]) -> ContentPart:
    choice = _first_choice(body)
    message = choice.get("message") if choice else None
    if not isinstance(message, dict):
        return NO_CONTENT
    content = message.get("content")
    return ContentPart(content, _part_texts(content))


def _set_choice_message(body: Mapping[str, Any], texts: Sequence[str | None]) -> dict[str, Any]:
    choices = list(body["choices"])
    message = choices[0]["message"]
    content = _with_texts(message.get("content"), texts)
    choices[0] = {**choices[0], "message": {**message, "content": content}}
    return {**body, "choices": choices}


def _choice_text(body: Mapping[str, Any]) -> ContentPart:
    choice = _first_choice(body)
    if choice is None:
        return NO_CONTENT
    text = choice.get("text")
    return ContentPart(text, (text if isinstance(text, str) else None,))


def _set_choice_text(body: Mapping[str, Any], texts: Sequence[str | None]) -> dict[str, Any]:
    choices = list(body["choices"])
    if texts and texts[0] is not None:
        choices[0] = {**choices[0], "text": texts[0]}
    return {**body, "choices": choices}


def _content_blocks(body: Mapping[str, Any]) -> ContentPart:
    content = body.get("content")
    if not isinstance(content, list):
        return NO_CONTENT
    return ContentPart(content, _part_texts(content))


def _set_content_blocks(body: Mapping[str, Any], texts: Sequence[str | None]) -> dict[str, Any]:
    return {**body, "content": _with_texts(body["content"], texts)}


def _output_parts(body: Mapping[str, Any]) -> list[tuple[int, int]]:
    """(item, part) positions of the text parts of every output message (Responses)."""
    output = body.get("output")
    if not isinstance(output, list):
        return []
    return [(i, j) for i, item in enumerate(output)
            if isinstance(item, dict) and item.get("type") == "message"
            and isinstance(item.get("content"), list)
            for j, part in enumerate(item["content"])
            if isinstance(part, dict) and isinstance(part.get("text"), str)]


def _output_texts(body: Mapping[str, Any]) -> ContentPart:
    positions = _output_parts(body)
    if not positions:
        return NO_CONTENT
    output = body["output"]
    return ContentPart(output, tuple(output[i]["content"][j]["text"] for i, j in positions))


def _set_output_texts(body: Mapping[str, Any], texts: Sequence[str | None]) -> dict[str, Any]:
    output = list(body["output"])
    for (i, j), text in zip(_output_parts(body), texts, strict=False):
        if text is None:
            continue
        content = list(output[i]["content"])
        content[j] = {**content[j], "text": text}
        output[i] = {**output[i], "content": content}
    return {**body, "output": output}


# Request type (Portkey's endpoint names, plus "responses") -> (read, write).
REQUEST_CONTENT: dict[str, tuple[Getter, Setter | None]] = {
    "chatComplete": (_last_message, _set_last_message),
    "messages": (_last_message, _set_last_message),
    "complete": (_prompt, _set_prompt),
    "embed": (_input, None),
    "responses": (_responses_input, _set_responses_input),
}
ANSWER_CONTENT: dict[str, tuple[Getter, Setter | None]] = {
    "chatComplete": (_choice_message, _set_choice_message),
    "messages": (_content_blocks, _set_content_blocks),
    "complete": (_choice_text, _set_choice_text),
    "responses": (_output_texts, _set_output_texts),
}


def read(table: Mapping[str, tuple[Getter, Setter | None]], request_type: str,
         body: Mapping[str, Any] | None) -> ContentPart:
    entry = table.get(request_type)
    if entry is None or body is None:
        return NO_CONTENT
    return entry[0](body)


def write(table: Mapping[str, tuple[Getter, Setter | None]], request_type: str,
          body: Mapping[str, Any], texts: Sequence[str | None]) -> dict[str, Any] | None:
    """A copy of `body` with the content's texts replaced; None where nothing can be written."""
    entry = table.get(request_type)
    if entry is None or entry[1] is None or read(table, request_type, body) is NO_CONTENT:
        return None
    return entry[1](body, texts)
