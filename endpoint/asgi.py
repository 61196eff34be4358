"""The ASGI application.

Pages and the admin get Django's full middleware stack. The gateway routes
(/chat, /v1/…, /health/…) are DRF views that need none of it: no session,
cookie, CSRF or message handling. Under ASGI each of Django's built-in
middlewares runs its hooks through ``sync_to_async`` (a thread hop each way),
which cost more CPU per API call than the rest of the gateway; so those
routes go through a handler with an empty middleware chain. Same project,
same URLconf, same views.

Around both, request bodies are bounded before anything reads them
(endpoint.body_limit). Every gateway answer gets its request id, server time
and retry advice headers in one place (``with_answer_headers``).

The ASGI lifespan (uvicorn sends it to each worker) opens the worker's
event-loop database pool (endpoint.core.asyncdb) and its heap trimmer
(endpoint.heap) at start, and closes them, with the Redis clients, at
shutdown.
"""

import asyncio
import logging
import os
import time
import uuid

from corsheaders.middleware import CorsMiddleware
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.urls import set_script_prefix

from endpoint import heap
from endpoint.body_limit import BoundedBody
from endpoint.core import errors
from endpoint.core.request_ids import answer_id, client_request_id

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "endpoint.settings")

site = get_asgi_application()


class GatewayASGIHandler(ASGIHandler):
    """Django's ASGI handler without what the gateway routes don't use.

    No middleware chain, and no request_started / request_finished signals:
    their receivers (closing the request thread's DB connection, resetting
    the debug query log) have nothing to do here, since gateway DB work runs
    on endpoint.core.db's own threads; sending them costs two thread hops, into a
    thread created for each request.
    """

    async def __call__(self, scope, receive, send):
        await self.handle(scope, receive, send)

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                await self.send_response(error_response, send)
                return
            await self._respond_unless_disconnected(request, receive, send)
        finally:
            body_file.close()

    async def _respond_unless_disconnected(self, request, receive, send) -> None:
        async def respond() -> None:
            response = await self.run_get_response(request)
            await self.send_response(response, send)

        watcher = asyncio.create_task(self.listen_for_disconnect(receive))
        responder = asyncio.create_task(respond())
        try:
            await asyncio.wait([watcher, responder], return_when=asyncio.FIRST_COMPLETED)
        finally:
            # A client that went away cancels the view (and its miner calls).
            for task in (watcher, responder):
                if not task.done():
                    task.cancel()
            await asyncio.gather(watcher, responder, return_exceptions=True)
        if not responder.cancelled() and responder.exception() is not None:
            raise responder.exception()

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        get_response = self._get_response_async if is_async else self._get_response
        self._middleware_chain = with_answer_headers(with_cors(convert_exception_to_response(get_response)))


def retry_can_help(status: int) -> bool:
    """False for answers a retry of the same request would only repeat: bad
    input, key or credit problems, an unknown route or model, and a 502 (all
    miners failed, after our own retries). 408, 409, 429 and the 5xx
    statuses of a busy or starting server stay retryable."""
    if status == 502:
        return False
    return not (400 <= status < 500) or status in (408, 409, 429)


def with_answer_headers(respond):
    """Every gateway answer, errors included, says which request it was
    (``x-request-id``, the id of its request log; see
    endpoint.core.request_ids), echoes the client's own id
    (``x-client-request-id``), says how long the server took
    (``openai-processing-ms``) and, when retrying can't help,
    ``x-should-retry: false``, which OpenAI's SDKs obey instead of retrying.

    Answers no view logged (an unknown /v1 route, a wrong method) get an id
    all the same: with no log row to find, it still lets a client quote the
    answer and an operator match it in the server's own log lines."""

    async def chain(request):
        started = time.perf_counter()
        request.request_id = uuid.uuid4()  # GatewayCall logs the call under this id
        response = await respond(request)
        response["x-request-id"] = answer_id(request.request_id)
        if theirs := client_request_id(request.headers):
            response["x-client-request-id"] = theirs
        response.setdefault("openai-processing-ms", str(round((time.perf_counter() - started) * 1000)))
        if not retry_can_help(response.status_code):
            response.setdefault("x-should-retry", "false")
        return response

    return chain


def with_cors(respond):
    """django-cors-headers around the gateway routes, when origins are
    configured (read per request, so the setting can change under tests);
    without them, not one extra call."""
    cors = convert_exception_to_response(CorsMiddleware(respond))

    async def chain(request):
        if settings.CORS_ALLOWED_ORIGINS:
            return await cors(request)
        return await respond(request)

    return chain


gateway = GatewayASGIHandler()


def is_gateway_path(path: str) -> bool:
    return path in ("/chat", "/v1") or path.startswith(("/v1/", "/health/"))


async def lifespan(receive, send) -> None:
    from endpoint.core.asyncdb import close_pool, open_pool
    from endpoint.core.invalidation import listen
    from endpoint.core.redis_clients import close_async_redis

    trimmer = listener = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await open_pool()
            except Exception as exc:  # the server must still start; calls then use DB threads
                logging.getLogger(__name__).error("could not open the event-loop DB pool: %s", exc)
            trimmer = asyncio.create_task(heap.requests.watch())
            listener = asyncio.create_task(listen())  # edits made by other processes
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for task in (trimmer, listener):
                if task is not None:
                    task.cancel()
            await close_pool()
            await close_async_redis()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def route(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    heap.requests.started()
    try:
        if scope["type"] == "http" and is_gateway_path(scope["path"]):
            await gateway(scope, receive, send)
        else:
            await site(scope, receive, send)
    except errors.StreamCut as cut:
        # Returning without ending the body makes the server drop the connection.
        logging.getLogger(__name__).warning("cut %s %s mid-answer: %s", scope.get("method"), scope.get("path"), cut)
    finally:
        heap.requests.finished()


# Every body is bounded before any of the above reads it (endpoint.body_limit).
application = BoundedBody(route)
