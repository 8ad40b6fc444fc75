"""Checks on the shape of the code that review would otherwise have to catch by eye:
provider tables use real OpenAI names, providers stay pure, every translating adapter has
recorded fixtures, and the gateway never branches on a provider's name."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from providers import REGISTRY
from providers.base import Param
from providers.openai_compat import OpenAICompatAdapter
from providers.table import OPENAI_PARAMS

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
BANNED_IN_PROVIDERS = ("gateway", "starlette", "httpx", "sqlalchemy", "pydantic_settings")
TRANSLATING = sorted(slug for slug, a in REGISTRY.items()
                     if not isinstance(a, OpenAICompatAdapter))


# Adapters without a table of their own: Azure passes OpenAI bodies through; Vertex uses
# Anthropic's and Google's tables.
NO_OWN_TABLE = {"azure-openai", "vertex-ai"}


def _tables(module_name: str) -> dict[str, dict[str, Param]]:
    module = importlib.import_module(module_name)
    return {name: value for name, value in vars(module).items()
            if isinstance(value, dict) and value and name.isupper()
            and all(isinstance(v, Param) for v in value.values())}


@pytest.mark.parametrize("slug", sorted(set(TRANSLATING) - NO_OWN_TABLE))
def test_each_translating_adapter_has_a_params_table(slug: str) -> None:
    assert "PARAMS" in _tables(type(REGISTRY[slug]).__module__)


@pytest.mark.parametrize("module", sorted(p.stem for p in (ROOT / "providers").glob("*.py")))
def test_param_tables_use_openai_names_and_native_tables_do_not(module: str) -> None:
    for name, table in _tables(f"providers.{module}").items():
        slug = module
        assert name.endswith(("PARAMS", "NATIVE")), f"{module}.{name}: unchecked table name"
        if name.endswith("PARAMS"):
            unknown = set(table) - OPENAI_PARAMS
            assert not unknown, f"{slug}.{name} maps names OpenAI does not have: {unknown}"
        if name.endswith("NATIVE"):
            shadowed = set(table) & OPENAI_PARAMS
            assert not shadowed, f"{slug}.{name} hides OpenAI parameters: {shadowed}"


def test_the_name_check_would_catch_portkeys_groq_typo() -> None:
    assert "logit_bias" in OPENAI_PARAMS and "logits_bias" not in OPENAI_PARAMS


@pytest.mark.parametrize("slug", TRANSLATING)
def test_each_translating_adapter_has_recorded_fixtures(slug: str) -> None:
    cases = [p for p in (FIXTURES / slug).iterdir() if (p / "case.json").exists()]
    files = {f.name for case in cases for f in case.iterdir()}
    assert "response.json" in files, f"{slug}: no recorded response"
    assert files & {"stream.sse", "stream.bin"}, f"{slug}: no recorded stream"
    assert "error.json" in files, f"{slug}: no recorded error"
    for case in cases:  # every success case has both halves and the body it must send
        if (case / "response.json").exists() and not (case / "case.json").read_text().count(
                "expect_embeddings"):
            assert {"upstream_request.json"} <= {f.name for f in case.iterdir()}
            assert any((case / n).exists() for n in ("stream.sse", "stream.bin")), case


@pytest.mark.parametrize("slug", sorted(REGISTRY))
def test_adapter_contract_fields(slug: str) -> None:
    adapter = REGISTRY[slug]
    assert adapter.slug == slug or isinstance(adapter, OpenAICompatAdapter)
    assert adapter.stream_format in ("sse", "aws-eventstream")
    assert isinstance(adapter.header_options, tuple)
    assert all(not name.startswith("x-portkey-") for name in adapter.header_options)


def test_providers_import_nothing_from_the_framework() -> None:
    for path in sorted((ROOT / "providers").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in BANNED_IN_PROVIDERS, f"{path.name} imports {name}"


def test_providers_read_no_clock_and_no_environment() -> None:
    pattern = re.compile(r"\btime\.time\(|datetime\.now\(|utcnow\(|os\.environ|os\.getenv|uuid4\(")
    for path in sorted((ROOT / "providers").glob("*.py")):
        assert not pattern.search(path.read_text()), f"{path.name} reads a clock or the env"


def test_gateway_never_branches_on_a_provider_name() -> None:
    slugs = "|".join(re.escape(s) for s in REGISTRY)
    pattern = re.compile(rf"""(==|!=|\bin)\s*\(?\s*["']({slugs})["']""")
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        match = pattern.search(path.read_text())
        assert match is None, f"{path.relative_to(ROOT)} compares with '{match.group(2)}'"
