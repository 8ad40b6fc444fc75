"""Reading request bodies within the size limit."""

from __future__ import annotations

from starlette.requests import Request

from gateway.errors import InvalidRequest, PayloadTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("content-length is not a number", param="content-length")
        if int(declared) > limit:
            raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of "
                                  f"{limit} bytes", code="payload_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes",
                                  code="payload_too_large")
        chunks.append(chunk)
    return b"".join(chunks)
