"""The rendering rules: what interpolates, what counts as missing, what is a wrong type."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest
from gateway.store.templates import Template, TemplateError


def render(text: str, **variables: object) -> str:
    return str(Template.compile([{"role": "user", "content": text}])
               .render(variables)[0]["content"])


def problem(text: str, **variables: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        render(text, **variables)
    assert caught.value.param == "variables"
    return caught.value


def test_interpolation_is_not_html_escaped_and_numbers_are_json():
    assert render("{{a}} {{{a}}} {{& a}}", a="<b> & 'c'") == "<b> & 'c' <b> & 'c' <b> & 'c'"
    assert render("{{n}}/{{x}}/{{big}}", n=5, x=0.25, big=10**20) == "5/0.25/" + "1" + "0" * 20


def test_sections_take_any_value_and_absent_means_false():
    template = "{{#items}}[{{name}}]{{/items}}{{^items}}none{{/items}}{{#flag}}!{{/flag}}"
    assert render(template, items=[{"name": "a"}, {"name": "b"}], flag=True) == "[a][b]!"
    assert render(template) == "none"
    assert render("{{#user}}{{name}} {{user.age}}{{/user}}", user={"name": "Bo", "age": 3}) \
        == "Bo 3"
    assert render("{{#tags}}{{.}},{{/tags}}", tags=["x", "y"]) == "x,y,"


def test_every_missing_variable_is_named_once_in_template_order():
    error = problem("{{b}} {{a}} {{b}} {{#list}}{{inner}}{{/list}} {{user.name}}",
                    list=[{}, {}], user={})
    assert error.code == "missing_variables"
    assert error.message == "missing prompt variables: b, a, inner, user.name"


def test_wrong_types_are_named_with_their_json_type():
    error = problem("{{a}}{{b}}{{c}}{{d}}{{#s}}{{e}}{{/s}}", a=True, b=None, c=[1], d={"k": 1},
                    s=[{"e": {"deep": 1}}])
    assert error.code == "invalid_variable_type"
    assert "a (got boolean), b (got null), c (got array), d (got object), e (got object)" \
        in error.message
    both = problem("{{a}}{{b}}", a={"x": 1})
    assert both.code == "missing_variables" and "wrong type: a (got object)" in both.message


def test_content_parts_are_rendered_and_the_stored_template_is_untouched():
    messages = [{"role": "user", "content": [{"type": "text", "text": "Hi {{n}}"},
                                             {"type": "image_url", "image_url": {"url": "u"}}]},
                {"role": "assistant", "content": None, "tool_calls": []}]
    template = Template.compile(messages)
    out = template.render({"n": "Ann"})
    assert out[0]["content"][0] == {"type": "text", "text": "Hi Ann"}
    assert out[0]["content"][1] == messages[0]["content"][1] and out[1] == messages[1]
    assert messages[0]["content"][0]["text"] == "Hi {{n}}"


@pytest.mark.parametrize(("text", "words"), [
    ("{{#a}} never closed", "invalid mustache template"),
    ("{{> partial}}", "partials are not supported"),
    ("{{#a}}{{> nested}}{{/a}}", "partials are not supported"),
    ("{{#a}}{{^b}}x{{#c}}{{> deep}}{{/c}}{{/b}}{{/a}}", r"\({{> deep}}\)"),
    ("{{=<% %>=}}<%^a%><%> other%><%/a%>", r"\({{> other}}\)"),
])
def test_bad_templates_are_refused_when_saved(text, words):
    with pytest.raises(TemplateError, match=words):
        Template.compile([{"role": "user", "content": "ok"}, {"role": "user", "content": text}])
    with pytest.raises(TemplateError, match=r"^messages\.1\.content"):
        Template.compile([{"role": "user", "content": "ok"}, {"role": "user", "content": text}])


def test_partial_syntax_under_other_delimiters_is_text():
    template = Template.compile([{"role": "user", "content": "{{=<% %>=}}{{> x}} <%n%>"}])
    assert template.render({"n": "Ann"})[0]["content"] == "{{> x}} Ann"


def test_variables_must_be_an_object():
    with pytest.raises(InvalidRequest, match="'variables' must be a JSON object"):
        Template.compile([{"role": "user", "content": "x"}]).render(["a"])  # type: ignore[arg-type]
