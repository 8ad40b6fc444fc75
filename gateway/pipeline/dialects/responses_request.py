"""An OpenAI Responses request, checked and decoded into the canonical (Chat Completions) body.

Every request field is translated, echoed back on the Response object, refused with a 400
naming it, or dropped; docs/dialects.md lists each one and why. The rule for the rest: a field
this module does not name is dropped (OpenAI adds fields often, and a client such as the Agents
SDK or Codex sends several that only OpenAI can honour), while an input item or content part
whose meaning would be lost is a 400, never silently skipped.

Input items become chat messages here; the same conversion turns stored items back into the
history a `previous_response_id` chain prepends (gateway/store/responses/ keeps them), once
`stored_items` has checked them as input is checked (they may be an upstream's, as it sent
them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from gateway.errors import InvalidRequest
from gateway.randomness import random_bytes

_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
_TOOL_CHOICES = frozenset({"none", "auto", "required"})
_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
_NUMBER = (int, float)  # not `int | float`: that builds a union object at every check
# Fields only OpenAI itself can honour (its stored conversations and prompts): a request with
# one goes natively to OpenAI or Azure, and to any other target is a 400 naming the field.
NATIVE_ONLY = {
    "conversation": "OpenAI's Conversations API state, which the gateway does not translate "
                    "(chain turns with previous_response_id instead)",
    "prompt": "a prompt stored at OpenAI, which the gateway does not translate (send "
              "instructions and input instead)",
}


def native_only(body: dict[str, Any]) -> tuple[str, str] | None:
    """The first NATIVE_ONLY field `body` sets, and why; None for a translatable body."""
    for name, why in NATIVE_ONLY.items():
        if body.get(name) is not None:
            return name, why
    return None


def new_id(prefix: str) -> str:
    """`msg_`, `fc_`, `call_`, `rs_` ids: the prefix and 48 random hex digits, from the
    system's generator: ids must not be predictable from the ones a client saw. Its bytes
    from the gateway's pool of them (gateway/randomness.py: a slice, not a syscall), without
    secrets.randbits's big-integer steps (1.7 µs; 2-4 ids a request)."""
    return f"{prefix}_{random_bytes(24).hex()}"


class ResponsesRequest(NamedTuple):
    """What a Responses request asked for, decoded once. A NamedTuple: as immutable as a
    frozen dataclass, built in 0.5 µs rather than 1.3 (which sets each field through
    object.__setattr__); one a request."""

    params: dict[str, Any]  # the canonical body without `messages`
    instructions: list[dict[str, Any]]  # the leading system message, or nothing
    messages: list[dict[str, Any]]  # this request's input as chat messages
    input_items: list[dict[str, Any]]  # this request's input items, each with an id
    echo: dict[str, Any]  # the request fields a Response object repeats
    previous_response_id: str | None
    store: bool
    stream: bool
    # Function tools that came inside a `namespace` tool: name -> namespace.
    namespaces: dict[str, str]

    def body(self, history: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        """The canonical chat body: instructions, then the chain's history, then the input."""
        return {**self.params, "messages": [*self.instructions, *history, *self.messages]}


def decode_request(body: dict[str, Any]) -> ResponsesRequest:
    """The canonical request (NATIVE_ONLY fields have none: the caller checks for them)."""
    model = _optional(body, "model", str, "a string")
    instructions = _optional(body, "instructions", str, "a string")
    previous = _optional(body, "previous_response_id", str, "a response id string")
    if previous is not None and not previous:
        raise _invalid("previous_response_id", "a response id string")
    store = _optional(body, "store", bool, "a boolean")
    stream = _optional(body, "stream", bool, "a boolean")
    raw_input = body.get("input")
    if raw_input is None and previous is None and not any(map(body.get, NATIVE_ONLY)):
        raise InvalidRequest("'input' is required (a string or a list of input items)",
                             param="input", code="missing_required_parameter")
    items = _input_items(raw_input)
    tools, namespaces = _tools(body.get("tools"))
    params: dict[str, Any] = {"model": model} if model is not None else {}
    if stream:
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}  # usage for response.completed
    params.update(_sampling(body))
    if tools:
        params["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            params["tool_choice"] = choice
        parallel = _optional(body, "parallel_tool_calls", bool, "a boolean")
        if parallel is not None:
            params["parallel_tool_calls"] = parallel
    text = body.get("text")
    response_format = _response_format(text)
    if response_format is not None:
        params["response_format"] = response_format
    effort = _effort(body.get("reasoning"))
    if effort is not None:
        params["reasoning_effort"] = effort
    system = [{"role": "system", "content": instructions}] if instructions else []
    return ResponsesRequest(
        params=params, instructions=system, messages=items_to_messages(items),
        input_items=items, echo=_echo(body, model, instructions, previous, store, text),
        previous_response_id=previous, store=store is not False, stream=bool(stream),
        namespaces=namespaces)


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, _NUMBER):
                raise _invalid(name, "a number")
            out[name] = value
    tokens = body.get("max_output_tokens")
    if tokens is not None:
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
            raise _invalid("max_output_tokens", "a positive integer")
        out["max_completion_tokens"] = tokens
    user = _optional(body, "user", str, "a string")
    if user is not None:
        out["user"] = user
    metadata = body.get("metadata")
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(v, str) for v in metadata.values())):
        raise _invalid("metadata", "an object of string values")
    return out


def _echo(body: dict[str, Any], model: str | None, instructions: str | None,
          previous: str | None, store: bool | None, text: Any) -> dict[str, Any]:
    given = body.get("reasoning")
    reasoning: dict[str, Any] = given if isinstance(given, dict) else {}
    return {
        "background": bool(body.get("background")), "instructions": instructions,
        "max_output_tokens": body.get("max_output_tokens"), "model": model or "",
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": previous,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": store is not False, "temperature": body.get("temperature"),
        "text": text if isinstance(text, dict) else {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": [t for t in body.get("tools") or () if t.get("type") in ("function",
                                                                            "namespace")],
        "top_p": body.get("top_p"), "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"), "metadata": body.get("metadata") or {},
    }


# --- input items ---------------------------------------------------------------------------

def _input_items(raw: Any) -> list[dict[str, Any]]:
    """The input as normalised items, each with an id (what `input_items` lists)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "id": new_id("msg"), "role": "user", "status": "completed",
                 "content": [{"type": "input_text", "text": raw}]}]
    if not isinstance(raw, list):
        raise _invalid("input", "a string or a list of input items")
    return [_item(item, f"input[{i}]") for i, item in enumerate(raw)]


def _item(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _invalid(where, "an input item object")
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind == "message":
        return _message_item(item, where)
    if kind == "function_call":
        for name in ("call_id", "name"):
            if not isinstance(item.get(name), str) or not item[name]:
                raise _invalid(f"{where}.{name}", "a non-empty string")
        arguments = item.get("arguments", "")
        if not isinstance(arguments, str):
            raise _invalid(f"{where}.arguments", "a JSON string")
        return {**item, "id": _id(item, "fc"), "arguments": arguments,
                "status": item.get("status") or "completed"}
    if kind == "function_call_output":
        if not isinstance(item.get("call_id"), str) or not item["call_id"]:
            raise _invalid(f"{where}.call_id", "a non-empty string")
        _tool_output(item.get("output"), f"{where}.output")
        return {**item, "id": _id(item, "fco"), "status": item.get("status") or "completed"}
    if kind == "reasoning":
        return {**item, "id": _id(item, "rs")}  # kept for input_items; never sent upstream
    if kind is None:
        raise _invalid(f"{where}.type", "an input item type")
    raise InvalidRequest(
        f"'{where}.type' {kind!r} is not supported by the gateway: send messages, "
        "function_call and function_call_output items (reasoning items are accepted and "
        "not sent upstream)", param=f"{where}.type", code="unsupported_item")


def _id(item: dict[str, Any], prefix: str) -> str:
    given = item.get("id")
    return given if isinstance(given, str) and given else new_id(prefix)


def _message_item(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        raise _invalid(f"{where}.role", "one of user, assistant, system, developer")
    content = item.get("content")
    text_type = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str):
        parts = [{"type": text_type, "text": content}]
    elif isinstance(content, list):
        parts = [_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]
    else:
        raise _invalid(f"{where}.content", "a string or a list of content parts")
    return {"type": "message", "id": _id(item, "msg"), "role": role,
            "status": item.get("status") or "completed", "content": parts}


def _part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise _invalid(where, "a content part object with a 'type'")
    kind = part["type"]
    if kind in _TEXT_PARTS:
        if not isinstance(part.get("text"), str):
            raise _invalid(f"{where}.text", "a string")
    elif kind == "refusal":
        if not isinstance(part.get("refusal"), str):
            raise _invalid(f"{where}.refusal", "a string")
    elif kind == "input_image":
        if not isinstance(part.get("image_url"), str):
            raise InvalidRequest(
                f"'{where}.image_url' must be a URL or data URL (file_id images need OpenAI's "
                "Files API, which the gateway does not provide)", param=f"{where}.image_url")
    elif kind == "input_file":
        if part.get("file_url") is not None or not isinstance(
                part.get("file_data") or part.get("file_id"), str):
            raise InvalidRequest(f"'{where}' must carry file_data (a data URL) or a file_id; "
                                 "file_url is not supported", param=f"{where}.file_data")
    else:
        raise InvalidRequest(f"'{where}.type' {kind!r} is not supported: send input_text, "
                             "input_image or input_file parts", param=f"{where}.type",
                             code="unsupported_content")
    return part


def _tool_output(output: Any, where: str) -> None:
    if isinstance(output, str):
        return
    if not isinstance(output, list):
        raise _invalid(where, "a string or a list of input_text parts")
    for j, part in enumerate(output):
        if not (isinstance(part, dict) and part.get("type") in _TEXT_PARTS
                and isinstance(part.get("text"), str)):
            raise _invalid(f"{where}[{j}]", "an input_text part (tool results are text when "
                                            "translated to Chat Completions)")


def stored_items(items: Sequence[Any]) -> list[dict[str, Any]]:
    """A chain's stored items, as a new turn's history takes them. They are untrusted (a
    native target's output items are kept as the upstream sent them), so they pass the
    checks a request's input passes, leniently: what is not an object, a message of no known
    role, a function call or output missing its ids is skipped, and so is a content part
    that would be refused in a request; other item types pass as they are (a chat history
    has no place for them; OpenAI, natively, judges them itself)."""
    kept: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message" and isinstance(item.get("content"), list):
            item = {**item, "content": [part for part in item["content"] if _fits(part)]}
        if kind in ("message", "function_call", "function_call_output"):
            try:
                item = _item(item, "stored item")
            except InvalidRequest:
                continue
        kept.append(item)
    return kept


def _fits(part: Any) -> bool:
    try:
        _part(part, "stored part")
    except InvalidRequest:
        return False
    return True


def items_to_messages(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat messages for normalised items. Consecutive assistant output (a message, then its
    function calls) becomes ONE assistant message, so every provider sees the tool results
    right after the turn that asked for them."""
    messages: list[dict[str, Any]] = []
    for item in items:
        kind = item["type"]
        if kind == "message":
            _add_message(messages, item)
        elif kind == "function_call":
            call = {"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"] or "{}"}}
            last = _open_assistant(messages)
            last.setdefault("tool_calls", []).append(call)
        elif kind == "function_call_output":
            output = item["output"]
            if not isinstance(output, str):
                output = "".join(part["text"] for part in output)
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
    return messages


def _add_message(messages: list[dict[str, Any]], item: dict[str, Any]) -> None:
    role = _ROLES[item["role"]]
    parts = item["content"]
    if role == "assistant":
        text = "".join(p.get("text") or p.get("refusal") or "" for p in parts)
        last = _open_assistant(messages)
        last["content"] = (last.get("content") or "") + text
        return
    converted = [_chat_part(p) for p in parts]
    if len(converted) == 1 and converted[0]["type"] == "text":
        messages.append({"role": role, "content": converted[0]["text"]})
    else:
        messages.append({"role": role, "content": converted})


def _open_assistant(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant message at the end to add to, or a new one."""
    if messages and messages[-1]["role"] == "assistant":
        return messages[-1]
    message: dict[str, Any] = {"role": "assistant", "content": None}
    messages.append(message)
    return message


def _chat_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part["type"]
    if kind == "input_image":
        image = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file = {k: part[k] for k in ("file_data", "file_id", "filename") if part.get(k)}
        return {"type": "file", "file": file}
    return {"type": "text", "text": part.get("text") or part.get("refusal") or ""}


# --- the same items for OpenAI itself (the native path) -----------------------------------

def native_input(raw: Any) -> list[Any]:
    """A request's `input` as a list of items."""
    if raw is None:
        return []
    return [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw)


def native_history(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored items as `input` for OpenAI itself, which keeps none of them (the gateway sends
    `store: false`): no ids (they name nothing there), assistant text as plain content,
    reasoning only when it carries its encrypted content (OpenAI cannot look it up)."""
    out: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type")
        if kind == "message":
            parts = item.get("content") or ()
            if item.get("role") == "assistant":
                text = "".join(p.get("text") or p.get("refusal") or "" for p in parts)
                out.append({"role": "assistant", "content": text})
            else:
                out.append({"role": item.get("role"), "content": [_input_part(p)
                                                                   for p in parts]})
        elif kind == "reasoning":
            if item.get("encrypted_content"):
                out.append(item)
        else:
            out.append({k: v for k, v in item.items() if k not in ("id", "status")})
    return out


def _input_part(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") in _TEXT_PARTS or part.get("type") == "refusal":
        return {"type": "input_text", "text": part.get("text") or part.get("refusal") or ""}
    return part


# --- tools and formats ---------------------------------------------------------------------

def _tools(raw: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Flat function tools (also those inside `namespace` tools) as nested chat tools;
    built-in tools (web_search, file_search, computer, mcp ...) are dropped: no chat
    provider runs them."""
    if raw is None:
        return [], {}
    if not isinstance(raw, list):
        raise _invalid("tools", "a list of tool objects")
    tools: list[dict[str, Any]] = []
    namespaces: dict[str, str] = {}
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise _invalid(f"tools[{i}]", "a tool object with a 'type'")
        if tool["type"] == "function":
            tools.append(_function(tool, f"tools[{i}]"))
        elif tool["type"] == "namespace" and isinstance(tool.get("tools"), list):
            for j, inner in enumerate(tool["tools"]):
                if isinstance(inner, dict) and inner.get("type") == "function":
                    tools.append(_function(inner, f"tools[{i}].tools[{j}]"))
                    namespaces.setdefault(inner["name"], str(tool.get("name") or ""))
    return tools, namespaces


def _function(tool: dict[str, Any], where: str) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise _invalid(f"{where}.name", "a non-empty string")
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise _invalid(f"{where}.parameters", "a JSON Schema object")
    function: dict[str, Any] = {"name": name}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    function["parameters"] = parameters if parameters is not None else {
        "type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _tool_choice(raw: Any) -> str | dict[str, Any] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw not in _TOOL_CHOICES:
            raise _invalid("tool_choice", "none, auto, required or a function tool choice")
        return raw
    if not isinstance(raw, dict):
        raise _invalid("tool_choice", "a string or an object")
    if raw.get("type") == "function":
        if not isinstance(raw.get("name"), str):
            raise _invalid("tool_choice.name", "a string")
        return {"type": "function", "function": {"name": raw["name"]}}
    if raw.get("type") == "allowed_tools":  # approximated by its mode over every tool
        return "required" if raw.get("mode") == "required" else "auto"
    return None  # a built-in tool's choice: its tool is dropped, so is the choice


def _response_format(text: Any) -> dict[str, Any] | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise _invalid("text", "an object")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object",
                                                            "json_schema"):
        raise _invalid("text.format.type", "text, json_object or json_schema")
    if fmt["type"] == "text":
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if not isinstance(fmt.get("schema"), dict):
        raise _invalid("text.format.schema", "a JSON Schema object")
    schema: dict[str, Any] = {"name": fmt.get("name") or "response", "schema": fmt["schema"]}
    for name in ("strict", "description"):
        if fmt.get(name) is not None:
            schema[name] = fmt[name]
    return {"type": "json_schema", "json_schema": schema}


def _effort(reasoning: Any) -> str | None:
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        raise _invalid("reasoning", "an object")
    effort = reasoning.get("effort")
    if effort is not None and effort not in _EFFORTS:
        raise _invalid("reasoning.effort", "one of " + ", ".join(sorted(_EFFORTS)))
    return effort if isinstance(effort, str) else None


def _optional(body: dict[str, Any], name: str, kind: type, what: str) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise _invalid(name, what)
    return value


def _invalid(where: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"'{where}' must be {what}", param=where, code="invalid_body")
