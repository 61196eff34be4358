"""A local stand-in for OpenAI (no internet here): its moderations endpoint, and a
chat completions endpoint answering what a test sets, for miners to forward to."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

from aiohttp import web


class FakeOpenAI:
    """Flags any input containing ``flag_word``; can be slow or refuse the key."""

    def __init__(self, flag_word: str = "FLAGME") -> None:
        self.flag_word = flag_word
        self.delay = 0.0
        self.status = 200
        self.calls: list[dict] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.chat_answer: dict = {}  # the JSON a plain chat completion answers
        self.chat_events: list[dict] = []  # the SSE events of a streamed one, before [DONE]

    async def _moderations(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append({"body": body, "auth": request.headers.get("Authorization", ""), "at": time.time()})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            error = {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
            return web.json_response({"error": error}, status=self.status)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        results = [{"flagged": self.flag_word in text, "categories": {}, "category_scores": {}} for text in inputs]
        return web.json_response({"id": "modr-test", "model": "omni-moderation-latest", "results": results})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.calls.append({"body": body, "auth": request.headers.get("Authorization", ""), "at": time.time()})
        if not body.get("stream"):
            return web.json_response(self.chat_answer)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in self.chat_events:
            await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        return response

    def start(self) -> FakeOpenAI:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/v1/moderations", self._moderations)
            app.router.add_post("/v1/chat/completions", self._chat)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            ready.set()
            try:
                await asyncio.Event().wait()
            finally:
                await runner.cleanup()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._task = self._loop.create_task(serve())
            try:
                self._loop.run_until_complete(self._task)
            except asyncio.CancelledError:
                pass

        self._thread = threading.Thread(target=run, daemon=True, name="fake-openai")
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop:
            self._loop.call_soon_threadsafe(self._task.cancel)
            self._thread.join(10)
