"""Reading the chat page's answer stream (newline-delimited JSON events)."""

from __future__ import annotations

import json

import httpx


def events(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def streamed_text(all_events: list[dict]) -> str:
    return "".join(e["text"] for e in all_events if e["event"] == "delta")


def final_html(all_events: list[dict]) -> str:
    done = [e for e in all_events if e["event"] == "done"]
    assert len(done) == 1, all_events
    return done[0]["html"]
