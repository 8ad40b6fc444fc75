"""The environment variables `Settings` reads, with their defaults, as `.env.example` lists them.

`python -m tests.support.settings_env` prints the settings part of `.env.example`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic_core import PydanticUndefined

from gateway.settings import Settings


def env_name(name: str) -> str:
    """The variable a field is read from (its first alias, else GATEWAY_<NAME>)."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return Settings.model_config.get("env_prefix", "") + name.upper()


def all_env_names() -> set[str]:
    """Every variable name Settings accepts, aliases included."""
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        else:
            names.add(env_name(name))
    return names


def default_text(name: str) -> str | None:
    """The default as an env value; None when the default is 'unset'."""
    field = Settings.model_fields[name]
    value: Any = field.get_default(call_default_factory=True)
    if value is None or value is PydanticUndefined:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, Path):
        return str(value) if str(value).startswith(("/", ".")) else f"./{value}"
    return str(value)


def env_example_lines() -> list[str]:
    lines = []
    for name in Settings.model_fields:
        default = default_text(name)
        lines.append(f"# {env_name(name)}=" if default is None else f"{env_name(name)}={default}")
    return lines


if __name__ == "__main__":
    print("\n".join(env_example_lines()))
