"""One API call from start to finish, shared by every route that prompts the
network: authenticate the key, pick miners, hold credits, dispatch, settle,
and write the request log whatever happens."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.utils import timezone

from endpoint import errors
from endpoint.config import aruntime_config
from endpoint.db import run_db
from endpoint.network.dispatch import (
    CANCELLED,
    Dispatch,
    DispatchOptions,
    dispatch,
    resolve_neurons,
    worst_case_answers,
)
from endpoint.network.metagraph import adirectory
from endpoint.network.wallet import validator_hotkey
from endpoint.strategies import DEFAULT, Strategy, parse_strategy
from keys.models import ApiKey
from keys.services import authenticate_key, parse_bearer, reserve_credits, settle_credits
from logs.services import MinerLog, RequestLog, record_request

log = logging.getLogger(__name__)


@dataclass
class Prompt:
    messages: list[dict[str, Any]]
    strategy: Strategy | None = None
    timeout: float | None = None
    in_parallel: int | None = None
    respond_on_first_success: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # forwarded to miners as is

    def payload(self) -> bytes:
        return orjson.dumps({**self.extra, "messages": self.messages})


def _key_strategy(key: ApiKey, config_default: str) -> Strategy:
    for text in (key.default_strategy, config_default):
        try:
            strategy = parse_strategy(text)
        except ValueError:
            log.warning("ignoring malformed default strategy %r", text)
            continue
        if strategy:
            return strategy
    return DEFAULT


class GatewayCall:
    """Use as ``async with GatewayCall(request, route) as call:``; the request
    log is written on the way out, with the error code if one was raised."""

    def __init__(self, request, route: str) -> None:
        self.started = time.perf_counter()
        self.log = RequestLog(route=route, started_at=timezone.now(), client_ip=request.META.get("REMOTE_ADDR"))

    async def __aenter__(self) -> GatewayCall:
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if isinstance(exc, errors.ApiError):
            self.log.status, self.log.api_error = exc.status, exc.code
        elif isinstance(exc, asyncio.CancelledError):
            self.log.status, self.log.api_error = 499, "ClientClosedRequest"
        elif exc is not None:
            self.log.status, self.log.api_error = 500, "InternalError"
        self.log.elapsed_ms = (time.perf_counter() - self.started) * 1000
        try:
            await asyncio.shield(run_db(record_request, self.log))
        except Exception:
            log.exception("could not write the request log %s", self.log.id)

    async def authenticate(self, authorization: str | None) -> ApiKey:
        key = await run_db(authenticate_key, parse_bearer(authorization))
        self.log.key_id, self.log.user_id = key.pk, key.owner_id
        return key

    async def answer(self, key: ApiKey, prompt: Prompt) -> Dispatch:
        self.log.messages = prompt.messages
        config = await aruntime_config()
        directory = await adirectory()
        if directory.empty:
            raise errors.MetagraphNotSynced()
        keypair = validator_hotkey(config.hotkey_mnemonic)
        strategy = prompt.strategy or _key_strategy(key, config.default_strategy)
        self.log.strategy = str(strategy)
        neurons = resolve_neurons(strategy, directory)
        if not neurons:
            raise errors.NoMinerServing()
        options = DispatchOptions(
            timeout=min(prompt.timeout or config.miner_timeout, config.max_miner_timeout),
            in_parallel=prompt.in_parallel,
            respond_on_first_success=prompt.respond_on_first_success,
        )
        cost = config.cost_per_answer
        reservation = await run_db(reserve_credits, key, cost * worst_case_answers(neurons, options))
        outcome = Dispatch()
        try:
            outcome = await dispatch(
                neurons,
                prompt.payload(),
                options,
                keypair=keypair,
                path=config.miner_path,
                allow_private=directory.network == "local",
            )
        finally:
            # Runs even when the client went away mid-dispatch: the hold is given back.
            used = cost * len(outcome.successes)
            settle = run_db(settle_credits, reservation, used, outcome.queried)
            self.log.credits_charged = await asyncio.shield(settle)
            self.log.miners = _miner_logs(outcome)
        if not outcome.successes:
            raise errors.AllMinersFailed(failed_responses=outcome.seed_json()["failed_responses"])
        return outcome


def _miner_logs(outcome: Dispatch) -> list[MinerLog]:
    rows = [
        MinerLog(r.uid, r.hotkey, r.ok, r.content, r.error, r.status, r.response_ms)
        for r in outcome.successes + outcome.failures
    ]
    rows += [MinerLog(n.uid, n.hotkey, False, error=CANCELLED) for n in outcome.cancelled]
    return rows
