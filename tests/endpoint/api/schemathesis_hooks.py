"""Hooks for the schemathesis run of test_prod_server (SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import sys

import schemathesis

# Arbitrary JSON (message content parts, extra OpenAI fields) nests deeply;
# Hypothesis then describes its strategies near the default limit, where
# CPython 3.11.7's ast.parse fails with "recursion depth mismatch".
sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))


@schemathesis.check
def no_server_fault(ctx, response, case) -> None:
    """502 (every miner failed) and 503 (not ready) are answers the contract
    documents, e.g. for a 5e-324 s timeout; any other 5xx is a fault."""
    if response.status_code >= 500 and response.status_code not in (502, 503):
        raise AssertionError(f"server fault {response.status_code}: {response.text[:500]}")
