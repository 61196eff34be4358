"""The Django and DRF internals our speed work leans on are not public API.
endpoint/asgi.py subclasses Django's ASGIHandler (its own ``handle`` and
``load_middleware``, Django's private middleware lists), and
endpoint/api/base.py re-implements DRF's ``APIView.dispatch`` as a coroutine.
An upgrade may rename one of those methods, change its parameters or add a
step to the code we copied. These tests fail then, naming the framework
versions and the file of ours to re-check."""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import django
import pytest
import rest_framework
from django.core.handlers import asgi as django_asgi
from django.core.handlers import exception as django_exception
from django.core.handlers.asgi import ASGIHandler
from rest_framework.views import APIView

VERSIONS = f"Django {django.get_version()}, DRF {rest_framework.VERSION}"
OUR_HANDLER = "endpoint/asgi.py (GatewayASGIHandler)"
OUR_VIEW = "endpoint/api/base.py (AsyncAPIView.dispatch)"


def parameters(func: Callable) -> str:
    """The parameter names, ``*`` and ``**`` marking the catch-alls."""
    shown = []
    for p in inspect.signature(func).parameters.values():
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        shown.append(prefix + p.name)
    return "(" + ", ".join(shown) + ")"


def code_of(func: Callable) -> str:
    """The function's code without its docstring and comments, in one layout
    (ast.unparse), so only a change in what it does shows."""
    node = ast.parse(textwrap.dedent(inspect.getsource(func))).body[0]
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        node.body = node.body[1:]
    return ast.unparse(node)


# What we call or override: (owner, name, parameters, a coroutine function?, our file using it).
METHODS: list[tuple[Any, str, str, bool, str]] = [
    (ASGIHandler, "__call__", "(self, scope, receive, send)", True, OUR_HANDLER),
    (ASGIHandler, "handle", "(self, scope, receive, send)", True, OUR_HANDLER),
    (ASGIHandler, "load_middleware", "(self, is_async)", False, OUR_HANDLER),
    (ASGIHandler, "read_body", "(self, receive)", True, OUR_HANDLER),
    (ASGIHandler, "create_request", "(self, scope, body_file)", False, OUR_HANDLER),
    (ASGIHandler, "run_get_response", "(self, request)", True, OUR_HANDLER),
    (ASGIHandler, "send_response", "(self, response, send)", True, OUR_HANDLER),
    (ASGIHandler, "listen_for_disconnect", "(self, receive)", True, OUR_HANDLER),
    (ASGIHandler, "get_response_async", "(self, request)", True, OUR_HANDLER),
    (ASGIHandler, "_get_response_async", "(self, request)", True, OUR_HANDLER),
    (ASGIHandler, "_get_response", "(self, request)", False, OUR_HANDLER),
    (django_asgi, "get_script_prefix", "(scope)", False, OUR_HANDLER),
    (django_exception, "convert_exception_to_response", "(get_response)", False, OUR_HANDLER),
    (APIView, "dispatch", "(self, request, *args, **kwargs)", False, OUR_VIEW),
    (APIView, "initialize_request", "(self, request, *args, **kwargs)", False, OUR_VIEW),
    (APIView, "initial", "(self, request, *args, **kwargs)", False, OUR_VIEW),
    (APIView, "http_method_not_allowed", "(self, request, *args, **kwargs)", False, OUR_VIEW),
    (APIView, "handle_exception", "(self, exc)", False, OUR_VIEW),
    (APIView, "finalize_response", "(self, request, response, *args, **kwargs)", False, OUR_VIEW),
    (APIView, "perform_content_negotiation", "(self, request, force)", False, OUR_VIEW),
]


@pytest.mark.parametrize(
    ("owner", "name", "expected", "is_async", "ours"), METHODS, ids=[f"{o.__name__}.{n}" for o, n, *_ in METHODS]
)
def test_the_framework_methods_we_use_keep_their_parameters(owner, name, expected, is_async, ours):
    where = f"{owner.__name__}.{name}"
    func = getattr(owner, name, None)
    assert func is not None, f"{VERSIONS}: {where} is gone; re-check {ours}"
    assert parameters(func) == expected, (
        f"{VERSIONS}: {where} now takes {parameters(func)}, not {expected}; re-check {ours}"
    )
    assert inspect.iscoroutinefunction(func) == is_async, (
        f"{VERSIONS}: {where} is {'no longer' if is_async else 'now'} a coroutine function; re-check {ours}"
    )


# The private middleware lists our load_middleware sets, and the Django method
# that reads each: with another name, Django would read a list we never set.
MIDDLEWARE_LISTS = [
    ("_middleware_chain", ASGIHandler.get_response_async),
    ("_view_middleware", ASGIHandler._get_response_async),
    ("_template_response_middleware", ASGIHandler._get_response_async),
    ("_exception_middleware", ASGIHandler.process_exception_by_middleware),
]


@pytest.mark.parametrize(("attribute", "reader"), MIDDLEWARE_LISTS, ids=[a for a, _ in MIDDLEWARE_LISTS])
def test_django_still_reads_the_middleware_lists_we_set(attribute, reader):
    assert hasattr(ASGIHandler, attribute), f"{VERSIONS}: ASGIHandler.{attribute} is gone; re-check {OUR_HANDLER}"
    assert f"self.{attribute}" in code_of(reader), (
        f"{VERSIONS}: {reader.__qualname__} no longer reads self.{attribute}; re-check {OUR_HANDLER}.load_middleware"
    )


def test_drf_still_has_the_view_attributes_our_dispatch_reads():
    for name in ("default_response_headers", "allowed_methods"):
        assert isinstance(inspect.getattr_static(APIView, name, None), property), (
            f"{VERSIONS}: APIView.{name} is no longer a property; re-check {OUR_VIEW}"
        )
    assert "post" in APIView.http_method_names, f"{VERSIONS}: APIView.http_method_names changed; re-check {OUR_VIEW}"


# The steps of each framework method we copied, in their order, as ast.unparse writes them.
COPIED_STEPS: list[tuple[Callable, list[str], str]] = [
    (
        ASGIHandler.handle,
        [
            "body_file = await self.read_body(receive)",
            "except RequestAborted:",
            "set_script_prefix(get_script_prefix(scope))",
            "request, error_response = self.create_request(scope, body_file)",
            "if request is None:",
            "await self.send_response(error_response, send)",
            "response = await self.run_get_response(request)",
            "await self.send_response(response, send)",
            "asyncio.create_task(self.listen_for_disconnect(receive))",
            "await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)",
            "task.cancel()",
            "body_file.close()",
        ],
        OUR_HANDLER + ".handle",
    ),
    (
        ASGIHandler.load_middleware,
        [
            "self._view_middleware = []",
            "self._template_response_middleware = []",
            "self._exception_middleware = []",
            "get_response = self._get_response_async if is_async else self._get_response",
            "handler = convert_exception_to_response(get_response)",
            "self._middleware_chain = handler",
        ],
        OUR_HANDLER + ".load_middleware",
    ),
    (
        APIView.dispatch,
        [
            "self.args = args",
            "self.kwargs = kwargs",
            "request = self.initialize_request(request, *args, **kwargs)",
            "self.request = request",
            "self.headers = self.default_response_headers",
            "self.initial(request, *args, **kwargs)",
            "if request.method.lower() in self.http_method_names:",
            "handler = self.http_method_not_allowed",
            "response = handler(request, *args, **kwargs)",
            "except Exception as exc:",
            "response = self.handle_exception(exc)",
            "self.response = self.finalize_response(request, response, *args, **kwargs)",
            "return self.response",
        ],
        OUR_VIEW,
    ),
]


@pytest.mark.parametrize(("func", "steps", "ours"), COPIED_STEPS, ids=[f.__qualname__ for f, *_ in COPIED_STEPS])
def test_the_framework_code_we_copied_still_has_our_steps(func, steps, ours):
    code = code_of(func)
    at = 0
    for step in steps:
        found = code.find(step, at)
        assert found >= 0, (
            f"{VERSIONS}: {func.__qualname__} no longer has the step {step!r} (in this order); "
            f"re-check {ours} against it:\n\n{code}"
        )
        at = found + len(step)


# A digest of each copied method's code: any change in what it does, a step
# added included, fails here. Only update a digest after bringing our copy in line.
DIGESTS: list[tuple[Callable, str, str]] = [
    (ASGIHandler.__call__, "7ad2eb1719abf0cb8c642501e82e869b6eec3be622c7bf8f94644b5aae6331b8", OUR_HANDLER),
    (ASGIHandler.handle, "757c338bcbdd6d351105a29b08cfa8edd1510f2c2def4070dca78801e5481875", OUR_HANDLER),
    (
        ASGIHandler.load_middleware,
        "b8b14208f6158b23d8d0bf5175ffd0609d58aa446b9e700022d48c0455697d98",
        OUR_HANDLER + ".load_middleware",
    ),
    (APIView.dispatch, "35774e9080c3fa6efbb6b3102954334ae4317f97ea407805b4265a420666bac5", OUR_VIEW),
]


@pytest.mark.parametrize(("func", "digest", "ours"), DIGESTS, ids=[f.__qualname__ for f, *_ in DIGESTS])
def test_the_framework_code_we_copied_is_unchanged(func, digest, ours):
    code = code_of(func)
    actual = hashlib.sha256(code.encode()).hexdigest()
    assert actual == digest, (
        f"{VERSIONS}: the code of {func.__qualname__} changed since {ours} copied it. "
        f"Compare the two, bring {ours} in line, then set the digest in this test to {actual}. "
        f"(A new Python's ast.unparse may also lay the code out differently; then only the digest needs updating.)"
        f"\n\n{code}"
    )


def test_uvicorn_still_makes_its_workers_through_the_name_start_replaces():
    # `manage.py start` swaps uvicorn's multiprocess.Process for ours (SIGINT
    # blocked while a worker starts); that works only while Multiprocess
    # looks the class up by that module-level name and starts it with start().
    import uvicorn
    from uvicorn.supervisors import multiprocess

    where = f"uvicorn {uvicorn.__version__}: re-check endpoint/management/workers.py and commands/start.py"
    assert isinstance(multiprocess.Process, type) and callable(multiprocess.Process.start), where
    source = inspect.getsource(multiprocess.Multiprocess)
    assert "Process(self.config, self.sockets)" in source, where
