"""The dialects some providers speak natively, by name (`ParsedRequest.dialect`): what the
attempt, cache and relay read in a native target's answers (`NativeDialect`)."""

from __future__ import annotations

from gateway.pipeline.dialects import NativeDialect
from gateway.pipeline.dialects.messages_native import MESSAGES_NATIVE
from gateway.pipeline.dialects.responses_native import RESPONSES_NATIVE

NATIVE: dict[str, NativeDialect] = {MESSAGES_NATIVE.name: MESSAGES_NATIVE,
                                    RESPONSES_NATIVE.name: RESPONSES_NATIVE}
