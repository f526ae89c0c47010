"""Fixtures of the safety tests: a Llama Guard-speaking OpenAI-compatible test server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.openai_server import FakeOpenAIServer


class GuardServer(FakeOpenAIServer):
    """Answers like Llama Guard: ``unsafe\\nS9`` when the last message under review mentions a bomb,
    ``unsafe\\nS1,S10`` for 'hurt them', gibberish for 'gibberish', else ``safe``."""

    def answer_for(self, body: dict[str, Any]) -> str:  # type: ignore[override]
        super().answer_for(body)  # counts the request by content
        msgs = body.get("messages", [])
        text = msgs[-1].get("content", "") if msgs else ""
        if "<BEGIN CONVERSATION>" in text:  # task template: judge only the conversation part
            text = text.split("<BEGIN CONVERSATION>")[1].split("<END CONVERSATION>")[0]
            last = text.strip().split("\n\n")[-1]
        else:
            last = text
        if "gibberish" in last:
            return "I think maybe it is fine, who knows"
        if "bomb" in last:
            return "unsafe\nS9"
        if "hurt them" in last:
            return "unsafe\nS1,S10"
        return "safe"

    def bodies_json(self) -> list[str]:
        return [json.dumps(b) for b in self.bodies]


@pytest.fixture
def guard_server():
    with GuardServer() as srv:
        yield srv
