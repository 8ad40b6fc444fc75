"""What the admin API and the CLI share: the database, the secret box, and row helpers."""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.engine import Database
from gateway.errors import InvalidRequest, NotFound, ServiceUnavailable
from gateway.store.crypto import SecretBox

log = logging.getLogger("gateway.keys")
Row = TypeVar("Row")
Payload = TypeVar("Payload", bound=BaseModel)


@dataclass(slots=True)
class KeyStore:
    db: Database
    box: SecretBox
    changed: Callable[[], None] = lambda: None  # drops resolver caches after a write


def new_id() -> str:
    return str(uuid.uuid4())


def slugify(name: str, limit: int = 48) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:limit].strip("-")
    return slug or "key"


def random_suffix() -> str:
    return secrets.token_hex(3)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


async def find(session: AsyncSession, model: type[Row], ref: str, what: str,
               by_slug: bool = True) -> Row:
    """A row by id (or slug); 404 naming `what` when there is none."""
    columns: Any = model  # a mapped class with `id` (and `slug` when by_slug)
    clause = or_(columns.id == ref, columns.slug == ref) if by_slug else columns.id == ref
    row = (await session.execute(select(model).where(clause))).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{what} '{ref}' not found", code=f"{what.replace(' ', '_')}_not_found")
    return row


def parse_payload(model: type[Payload], data: Any) -> Payload:
    """Validate an admin payload; the first problem becomes a 400 naming the field."""
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(p) for p in problem["loc"]) or None
        # The message, never the input: the input may hold a secret.
        raise InvalidRequest(f"{field or 'body'}: {problem['msg']}", param=field,
                             code="invalid_field") from None


@contextlib.contextmanager
def database_errors() -> Iterator[None]:
    """The one boundary where driver errors become a 503 (a 500 would be a gateway bug)."""
    try:
        yield
    except (DBAPIError, OSError) as exc:
        # The driver's class only: its message may quote SQL; parameters are hidden anyway.
        log.warning("key store unavailable: %s", type(getattr(exc, "orig", exc)).__name__)
        raise ServiceUnavailable("the gateway's key store (database) is unavailable; "
                                 "try again shortly", code="key_store_unavailable") from None
