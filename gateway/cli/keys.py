"""`python -m gateway migrate | keys | virtual-keys | configs | prompts ...`: the key store.

Each command prints JSON on stdout, errors as one `error: ...` line on stderr, and exits
non-zero on failure. Secrets are read from a named environment variable or stdin, never from
the command line, where `ps` and shell history would keep them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.exc import DBAPIError

from gateway.db import migrate
from gateway.db.engine import open_database
from gateway.db.types import utcnow
from gateway.errors import GatewayError
from gateway.settings import Settings
from gateway.store import api_keys, configs, key_guardrails, prompts, virtual_keys
from gateway.store.crypto import MasterKeyError
from gateway.store.key_store import KeyStore
from gateway.store.setup import SchemaOutOfDate, open_key_store

Command = Callable[[argparse.Namespace, KeyStore], Awaitable[Any]]
_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_ALLOW_LISTS = ("allowed_virtual_keys", "allowed_configs", "allowed_models")


class CommandError(Exception):
    """A usage problem found before the key store is touched."""


def register(commands: Any) -> None:
    """Add the key-store subcommands to the top-level parser's subparsers."""
    up = commands.add_parser("migrate", help="apply database migrations (upgrade to head)")
    up.add_argument("--down", metavar="REVISION", help="downgrade to REVISION instead ('base')")
    up.set_defaults(run=_migrate)
    _api_key_commands(commands.add_parser("keys", help="gateway API keys"))
    _virtual_key_commands(commands.add_parser("virtual-keys", help="virtual keys"))
    _config_commands(commands.add_parser("configs", help="saved configs"))
    _prompt_commands(commands.add_parser("prompts", help="prompt templates"))


def _api_key_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create a key; it is printed once, never again")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", action="append", choices=["inference", "admin"],
                        help="repeatable; default inference")
    create.add_argument("--expires", help="ISO 8601 time or a duration such as 30d, 12h")
    create.add_argument("--description")
    create.add_argument("--allowed-virtual-key", action="append", metavar="SLUG_OR_ID",
                        help="limit the key to these virtual keys (repeatable)")
    create.add_argument("--allowed-config", action="append", metavar="SLUG_OR_ID",
                        help="limit the key to these saved configs (repeatable)")
    create.add_argument("--allowed-model", action="append", metavar="MODEL",
                        help="limit the key to these models (repeatable)")
    _guardrail_arguments(create, "made with the key")
    create.set_defaults(run=_store_command(_create_api_key))
    sub.add_parser("list").set_defaults(run=_store_command(
        lambda args, store: _views(api_keys.list_all(store), api_keys.view)))
    revoke = sub.add_parser("revoke")
    revoke.add_argument("id")
    revoke.set_defaults(run=_store_command(
        lambda args, store: _view(api_keys.revoke(store, args.id), api_keys.view)))
    sub.add_parser("rotate-master", help="re-encrypt every provider secret under "
                   "GATEWAY_MASTER_KEY (old keys in GATEWAY_PREVIOUS_MASTER_KEYS)").set_defaults(
        run=_store_command(_rotate_master))


def _virtual_key_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create")
    create.add_argument("--name", required=True)
    create.add_argument("--provider", required=True)
    secret = create.add_mutually_exclusive_group()
    secret.add_argument("--secret-env", metavar="VAR", help="read the provider key from $VAR")
    secret.add_argument("--secret-stdin", action="store_true", help="read it from stdin")
    create.add_argument("--slug")
    create.add_argument("--note")
    create.add_argument("--custom-host")
    create.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="provider option, e.g. azure-resource-name=res (repeatable)")
    create.add_argument("--allowed-model", action="append", metavar="MODEL")
    create.add_argument("--allowed-custom-host", action="append", metavar="URL",
                        help="an origin (scheme://host[:port]) a request's custom host may "
                             "name with this key's secret; repeatable")
    create.add_argument("--expires", help="ISO 8601 time or a duration such as 30d, 12h")
    _guardrail_arguments(create, "through the key")
    create.set_defaults(run=_store_command(_create_virtual_key))
    sub.add_parser("list").set_defaults(run=_store_command(
        lambda args, store: _views(virtual_keys.list_all(store), virtual_keys.view)))
    revoke = sub.add_parser("revoke")
    revoke.add_argument("ref", help="id or slug")
    revoke.set_defaults(run=_store_command(
        lambda args, store: _view(virtual_keys.revoke(store, args.ref), virtual_keys.view)))


def _guardrail_arguments(create: argparse.ArgumentParser, made: str) -> None:
    for phase, on in (("input", "on its request"), ("output", "on its answer")):
        create.add_argument(
            f"--{phase}-guardrail", action="append", metavar="JSON",
            help=f"a guardrail every request {made} runs {on}, whatever its config: one "
                 "hook as JSON, shorthand or full (repeatable), e.g. "
                 '\'{"default.contains": {"words": ["DROP TABLE"], "operator": "none"}, '
                 '"deny": true}\'')


def _guardrails(values: list[str] | None, flag: str) -> list[Any] | None:
    if values is None:
        return None
    return [_json_arg(None, value, flag) for value in values]


def _config_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create")
    create.add_argument("--name", required=True)
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", type=Path, help="a JSON file holding the config")
    source.add_argument("--json", help="the config as a JSON string")
    create.set_defaults(run=_store_command(_create_config))
    sub.add_parser("list").set_defaults(run=_store_command(
        lambda args, store: _views(configs.list_all(store), configs.view)))


def _prompt_fields(parser: argparse.ArgumentParser, *, create: bool) -> None:
    template = parser.add_mutually_exclusive_group(required=create)
    template.add_argument("--messages-file", type=Path, help="a JSON file: a list of messages")
    template.add_argument("--messages-json", help="the messages as a JSON list")
    template.add_argument("--text", help="the template as one user message")
    parser.add_argument("--name", required=create)
    parser.add_argument("--model")
    parser.add_argument("--parameters-json", help='stored parameters, e.g. \'{"max_tokens": 200}\'')
    route = parser.add_mutually_exclusive_group()
    route.add_argument("--provider", help="route to this provider with the caller's key")
    route.add_argument("--virtual-key", help="route with this virtual key (slug)")
    route.add_argument("--config", help="route with this saved config (slug)")
    parser.add_argument("--description")


def _prompt_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create a prompt; version 1 is published")
    _prompt_fields(create, create=True)
    create.add_argument("--draft", action="store_true", help="do not publish version 1")
    create.set_defaults(run=_store_command(_create_prompt))
    update = sub.add_parser("update", help="rename, or save a new version")
    update.add_argument("ref", help="id or slug")
    _prompt_fields(update, create=False)
    update.add_argument("--publish", action="store_true", help="publish the new version")
    update.set_defaults(run=_store_command(_update_prompt))
    publish = sub.add_parser("publish", help="publish a version (default: the latest)")
    publish.add_argument("ref", help="id or slug")
    publish.add_argument("--version", type=int)
    publish.set_defaults(run=_store_command(lambda args, store: _pair(
        prompts.publish(store, args.ref, {"version": args.version}))))
    sub.add_parser("list").set_defaults(run=_store_command(
        lambda args, store: _views(prompts.list_all(store), prompts.view)))
    by_ref: dict[str, Command] = {
        "show": lambda args, store: _pair(prompts.get(store, args.ref)),
        "versions": _prompt_versions,
        "delete": lambda args, store: _view(prompts.delete(store, args.ref), prompts.view),
    }
    for name, command in by_ref.items():
        action = sub.add_parser(name)
        action.add_argument("ref", help="id or slug")
        action.set_defaults(run=_store_command(command))


async def _create_prompt(args: argparse.Namespace, store: KeyStore) -> Any:
    payload = {"publish": not args.draft, **_prompt_payload(args)}
    row, version = await prompts.create(store, payload)
    return {"id": row.id, "slug": row.slug, "version_id": version.id,
            "version": version.version, "object": "prompt"}


async def _update_prompt(args: argparse.Namespace, store: KeyStore) -> Any:
    return await _pair(prompts.update(store, args.ref,
                                      {"publish": args.publish, **_prompt_payload(args)}))


async def _prompt_versions(args: argparse.Namespace, store: KeyStore) -> Any:
    row, rows = await prompts.versions(store, args.ref)
    items = [prompts.version_view(version, row) for version in rows]
    return {"object": "list", "total": len(items), "data": items}


def _prompt_payload(args: argparse.Namespace) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if args.messages_file is not None or args.messages_json is not None:
        payload["messages"] = _json_arg(args.messages_file, args.messages_json, "the messages")
    if args.text is not None:
        payload["string"] = args.text
    if args.parameters_json is not None:
        payload["parameters"] = _json_arg(None, args.parameters_json, "--parameters-json")
    optional = {"name": args.name, "model": args.model, "provider": args.provider,
                "virtual_key": args.virtual_key, "config": args.config,
                "description": args.description}
    payload.update({k: v for k, v in optional.items() if v is not None})
    return payload


def _json_arg(path: Path | None, text: str | None, what: str) -> Any:
    try:
        return orjson.loads(path.read_text() if path is not None else text or "")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"{what} is not valid JSON: {exc}") from None


async def _pair(result: Awaitable[tuple[Any, Any]]) -> Any:
    row, version = await result
    return prompts.view(row, version)


async def _create_api_key(args: argparse.Namespace, store: KeyStore) -> Any:
    payload = {"name": args.name, "scopes": args.scope or ["inference"],
               "description": args.description, "expires_at": _expiry(args.expires),
               "allowed_virtual_keys": args.allowed_virtual_key,
               "allowed_configs": args.allowed_config, "allowed_models": args.allowed_model,
               **_guardrail_fields(args)}
    row, key = await api_keys.create(store, payload)
    allowed = {name: getattr(row, name) for name in (*_ALLOW_LISTS, *key_guardrails.COLUMNS)
               if getattr(row, name) is not None}
    return {"id": row.id, "key": key, "object": "api-key", "name": row.name,
            "scopes": row.scopes, "expires_at": payload["expires_at"], **allowed}


async def _create_virtual_key(args: argparse.Namespace, store: KeyStore) -> Any:
    payload: dict[str, Any] = {"name": args.name, "provider": args.provider,
                               "key": _secret(args), "options": _options(args.option)}
    optional = {"slug": args.slug, "note": args.note, "custom_host": args.custom_host,
                "allowed_models": args.allowed_model, "expires_at": _expiry(args.expires),
                "allowed_custom_hosts": args.allowed_custom_host, **_guardrail_fields(args)}
    payload.update({k: v for k, v in optional.items() if v is not None})
    row = await virtual_keys.create(store, payload)
    return {"id": row.id, "slug": row.slug, "object": "virtual-key"}


def _guardrail_fields(args: argparse.Namespace) -> dict[str, list[Any] | None]:
    return {key_guardrails.INPUT: _guardrails(args.input_guardrail, "--input-guardrail"),
            key_guardrails.OUTPUT: _guardrails(args.output_guardrail, "--output-guardrail")}


async def _create_config(args: argparse.Namespace, store: KeyStore) -> Any:
    try:
        text = args.file.read_text() if args.file else args.json
        config = orjson.loads(text)
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"the config is not valid JSON: {exc}") from None
    row = await configs.create(store, {"name": args.name, "config": config})
    return {"id": row.id, "slug": row.slug, "version_id": row.version_id, "object": "config"}


async def _rotate_master(args: argparse.Namespace, store: KeyStore) -> Any:
    moved, current = await virtual_keys.rotate_master(store)
    return {"re_encrypted": moved, "already_current": current, "key_id": store.box.current_id}


def _secret(args: argparse.Namespace) -> str | None:
    if args.secret_stdin:
        value = sys.stdin.readline().strip()
    elif args.secret_env:
        # The operator names the variable; reading it is the command's whole point.
        value = os.environ.get(args.secret_env, "")
        if not value:
            raise CommandError(f"environment variable {args.secret_env} is unset or empty")
    else:
        return None
    if not value:
        raise CommandError("no secret on stdin")
    return value


def _options(pairs: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CommandError(f"--option needs NAME=VALUE, got '{pair}'")
        options[name.strip()] = value.strip()
    return options


def _expiry(value: str | None) -> str | None:
    if value is None:
        return None
    match = _DURATION.match(value.strip())
    if match:
        delta = timedelta(**{_UNITS[match[2]]: int(match[1])})
        return (utcnow() + delta).isoformat()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--expires wants an ISO 8601 time or a duration like 30d, "
                           f"got '{value}'") from None
    if moment.tzinfo is None:
        raise CommandError("--expires needs a time zone, e.g. 2026-01-31T00:00:00+00:00")
    return moment.isoformat()


async def _views(rows: Awaitable[list[Any]], view: Callable[[Any], dict[str, Any]]) -> Any:
    items = [view(row) for row in await rows]
    return {"object": "list", "total": len(items), "data": items}


async def _view(row: Awaitable[Any], view: Callable[[Any], dict[str, Any]]) -> Any:
    return view(await row)


def _store_command(command: Command) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        async def main() -> Any:
            db, store, _ = await open_key_store(settings)
            try:
                return await command(args, store)
            finally:
                await db.close()
        return _report(lambda: asyncio.run(main()))
    return run


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    async def main() -> Any:
        db = open_database(settings)
        try:
            if args.down:
                await migrate.downgrade(db, args.down)
            else:
                await migrate.upgrade(db)
            return {"revision": await migrate.current(db)}
        finally:
            await db.close()
    return _report(lambda: asyncio.run(main()))


def _report(call: Callable[[], Any]) -> int:
    """Run a command: JSON on stdout and 0, or one error line on stderr and 1."""
    try:
        result = call()
    except (GatewayError, CommandError, MasterKeyError, SchemaOutOfDate) as exc:
        message = exc.message if isinstance(exc, GatewayError) else str(exc)
        print(f"error: {message}", file=sys.stderr)
        return 1
    except (DBAPIError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"error: database: {reason} (is DATABASE_URL right, and has "
              "`python -m gateway migrate` run?)", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
