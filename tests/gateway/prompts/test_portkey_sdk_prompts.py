"""The portkey-ai SDK's prompt methods against this gateway: admin, render and completions."""

from __future__ import annotations

import pytest
from portkey_ai import Portkey
from portkey_ai.api_resources.exceptions import BadRequestError, NotFoundError

from tests.support.keys import create_api_key, create_virtual_key
from tests.support.mock_upstream import MockUpstream

SECRET = "sk-sdk-prompt-provider-key-5c5c"
TEMPLATE = '[{"role": "system", "content": "Answer in {{language}}."}, ' \
           '{"role": "user", "content": "{{question}}"}]'


@pytest.fixture
def portkey(keyed_gateway) -> tuple[Portkey, Portkey]:
    """An admin client (SDK admin methods) and an inference client, both on the gateway."""
    gateway = keyed_gateway()
    admin = Portkey(base_url=f"{gateway.url}/v1", api_key=create_api_key(gateway,
                                                                        scopes=["admin"]))
    vk = create_virtual_key(gateway, key=SECRET)["slug"]
    created = admin.prompts.create(name="sdk prompt", collection_id="ignored", string=TEMPLATE,
                                   parameters={"temperature": 0.1}, model="llama-3",
                                   virtual_key=vk)
    assert created.object == "prompt" and created.slug.startswith("pp-sdk-prompt-")
    client = Portkey(base_url=f"{gateway.url}/v1", api_key=create_api_key(gateway),
                     max_retries=0)
    client.slug = created.slug  # type: ignore[attr-defined]
    return admin, client


def test_sdk_prompt_completion_with_variables_and_overrides(portkey, mock: MockUpstream):
    _, client = portkey
    completion = client.prompts.completions.create(
        prompt_id=client.slug, variables={"language": "French", "question": "Why?"},
        max_tokens=250, presence_penalty=0.2)
    assert completion.choices[0].message.content
    sent = mock.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert sent.body["messages"] == [{"role": "system", "content": "Answer in French."},
                                     {"role": "user", "content": "Why?"}]
    assert (sent.body["model"], sent.body["temperature"]) == ("llama-3", 0.1)
    assert (sent.body["max_tokens"], sent.body["presence_penalty"]) == (250, 0.2)


def test_sdk_streaming_prompt_completion(portkey, mock: MockUpstream):
    _, client = portkey
    stream = client.prompts.completions.create(
        prompt_id=client.slug, variables={"language": "en", "question": "q"}, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text and mock.requests[-1].body["stream"] is True


def test_sdk_render_versions_and_publish(portkey, mock: MockUpstream):
    admin, client = portkey
    rendered = client.prompts.render(prompt_id=client.slug,
                                     variables={"language": "de", "question": "Wie?"})
    assert rendered.success and rendered.data.model == "llama-3"
    assert [m.content for m in rendered.data.messages] == ["Answer in de.", "Wie?"]

    admin.prompts.update(client.slug, string="Just {{question}}")  # version 2, unpublished
    def first(ref: str) -> str:
        client.prompts.completions.create(prompt_id=ref,
                                          variables={"language": "x", "question": "q"})
        return str(mock.requests[-1].body["messages"][0]["content"])
    assert first(client.slug) == "Answer in x."
    assert first(f"{client.slug}@2") == "Just q"
    admin.prompts.publish(client.slug, version=2)
    assert first(client.slug) == "Just q"
    versions = admin.prompts.versions.list(client.slug)
    assert [v["version"] for v in versions.data] == [1, 2]
    one = admin.prompts.versions.retrieve(client.slug, versions.data[0]["id"])
    assert one.version == 1 and one.published is False
    assert admin.prompts.retrieve(client.slug).published_version == 2
    assert admin.prompts.list().total == 1

    with pytest.raises(BadRequestError, match="missing prompt variables: question"):
        client.prompts.completions.create(prompt_id=client.slug, variables={})
    with pytest.raises(BadRequestError, match="wrong type: question"):
        client.prompts.completions.create(prompt_id=client.slug,
                                          variables={"question": {"nested": 1}})
    admin.prompts.delete(client.slug)
    with pytest.raises(NotFoundError):
        client.prompts.completions.create(prompt_id=client.slug, variables={"question": "q"})
