from __future__ import annotations

import pytest

from providers.base import MERGE, ConfigurationError, Param
from providers.table import apply, as_list, negate


def test_dotted_targets_merge_and_later_rows_win() -> None:
    params = {
        "max_tokens": Param("config.max", default=10),
        "max_completion_tokens": Param("config.max"),
        "temperature": Param("config.temperature", clamp=(0, 1)),
        "messages": Param(MERGE, transform=lambda m: {"config": {"n": len(m)}, "msgs": m}),
    }
    out = apply(params, {"max_tokens": 5, "max_completion_tokens": 7, "temperature": 3,
                         "messages": ["a", "b"], "unknown": 1})
    assert out == {"config": {"max": 7, "temperature": 1, "n": 2}, "msgs": ["a", "b"]}


def test_defaults_fill_only_missing_targets_and_none_is_absent() -> None:
    params = {"max_tokens": Param("max", default=4096), "stop": Param("stops", transform=as_list)}
    assert apply(params, {"max_tokens": None, "stop": "x"}) == {"max": 4096, "stops": ["x"]}
    assert apply(params, {"max_tokens": 3}) == {"max": 3}


def test_transform_returning_none_sends_nothing() -> None:
    params = {"parallel_tool_calls": Param("tc.disable", transform=negate)}
    assert apply(params, {"parallel_tool_calls": True}) == {}
    assert apply(params, {"parallel_tool_calls": False}) == {"tc": {"disable": True}}


@pytest.mark.parametrize("value", ["hot", True, [1]])
def test_clamp_refuses_non_numbers(value: object) -> None:
    with pytest.raises(ConfigurationError, match="'temperature' must be a number"):
        apply({"temperature": Param("t", clamp=(0, 1))}, {"temperature": value})
