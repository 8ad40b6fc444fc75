"""A prompt call becomes a chat completion: which version, what body, what route."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from gateway.contracts.identity import PromptPin, StoredPrompt
from gateway.contracts.request import ParsedRequest
from gateway.errors import InvalidRequest


def parse_ref(ref: str) -> tuple[str, PromptPin]:
    """`pp-x` (the published version), `pp-x@3` (version 3) or `pp-x@latest` (the newest)."""
    slug, sep, version = ref.partition("@")
    if not sep:
        return slug, None
    if version == "latest":
        return slug, "latest"
    if version.isdigit() and int(version) >= 1:
        return slug, int(version)
    raise InvalidRequest(f"prompt version '{version}' in '{ref}' must be a positive number or "
                         "'latest'", param="prompt_id", code="invalid_prompt_version")


def chat_body(prompt: StoredPrompt, request: dict[str, Any]) -> dict[str, Any]:
    """Stored parameters, then the stored model, then the caller's fields; messages rendered."""
    fields = dict(request)
    variables = fields.pop("variables", None)
    if "messages" in fields:
        raise InvalidRequest("'messages' cannot be sent to a prompt: its template makes them; "
                             "send 'variables'", param="messages", code="invalid_field")
    messages = prompt.template.render({} if variables is None else variables)
    body: dict[str, Any] = copy.deepcopy(dict(prompt.parameters))  # shared by the cache
    if prompt.model is not None:
        body["model"] = prompt.model
    body.update(fields)
    body["messages"] = messages
    return body


def route(request: ParsedRequest, prompt: StoredPrompt) -> dict[str, str | None]:
    """Route by what the prompt stores, unless the caller sent a config of their own: the
    request's config fields to replace.

    A stored provider or virtual key becomes a one-target inline config, so it wins over the
    caller's x-portkey-provider / x-portkey-virtual-key and over their key's default config;
    a virtual key still needs the caller's gateway API key, as everywhere.
    """
    if request.has_config:
        return {}
    if prompt.config is not None:
        return {"saved_config": prompt.config}
    if prompt.virtual_key is not None:
        return {"inline_config": orjson.dumps({"virtual_key": prompt.virtual_key}).decode()}
    if prompt.provider is not None:
        return {"inline_config": orjson.dumps({"provider": prompt.provider}).decode()}
    return {}
