"""One API call from start to finish, shared by every route that prompts the
network: authenticate the key, pick miners, hold credits, dispatch, settle,
and write the request log whatever happens."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from django.utils import timezone

from endpoint.core import errors
from endpoint.core.config import RuntimeConfig, aruntime_config
from endpoint.core.errors import MinerFailure
from endpoint.core.models import Subnet
from endpoint.core.request_ids import client_request_id
from endpoint.core.strategies import DEFAULT, Strategy, parse_strategy
from endpoint.core.usage import Usage, ausage, combined_usage
from endpoint.metrics import observe_call
from endpoint.moderation import check_moderation
from endpoint.network.dispatch import (
    Dispatch,
    DispatchOptions,
    StreamRace,
    dispatch,
    race_streams,
    resolve_neurons,
    worst_case_answers,
    worst_case_seconds,
)
from endpoint.network.media import described
from endpoint.network.metagraph import Directory, NeuronInfo, adirectory, asubnet_directory
from endpoint.network.protocol import (
    MinerBytes,
    MinerResult,
    MinerStream,
    StreamedAnswer,
    Wire,
    answer_texts,
    is_usage_only,
)
from endpoint.network.routing import Route, choose_best
from endpoint.network.structured import AnswerFormat
from endpoint.network.wallet import validator_hotkey
from endpoint.ratelimits import RateState, check_rate_limits, rules_for
from keys.credits import Reservation, Settlement, areserve_credits
from keys.models import ApiKey
from keys.services import aauthenticate_key, parse_bearer
from logs.models import CANCELLED
from logs.services import MinerLog, RequestLog, write_request_log

log = logging.getLogger(__name__)


@dataclass
class Prompt:
    messages: list[dict[str, Any]]
    strategy: Strategy | None = None
    timeout: float | None = None
    in_parallel: int | None = None
    respond_on_first_success: bool = True
    answers: int = 1  # with respond_on_first_success: good answers wanted, each from another miner
    extra: dict[str, Any] = field(default_factory=dict)  # forwarded to miners as is
    subnet: Subnet | None = None  # a chat subnet other than the config's (named by /v1's model)

    def payload(self, **overrides: Any) -> bytes:
        return orjson.dumps({**self.extra, **overrides, "messages": self.messages})


@dataclass
class MediaPrompt:
    """A call to a subnet of another kind than chat (images, speech,
    transcription, embeddings): the body its miners get, how they answer,
    and what the log and moderation see of it (text, never media bytes)."""

    subnet: Subnet
    payload: bytes
    wire: Wire
    texts: list[str]  # the text inputs, for moderation
    logged: list[dict[str, Any]]  # the request as the log keeps it
    strategy: Strategy | None = None
    units: int = 1  # priced units in one answer (images asked for)


@dataclass
class Plan:
    """Where and how a prompt goes, decided before any credit is held."""

    config: RuntimeConfig
    directory: Directory
    keypair: Any
    neurons: list[NeuronInfo]
    options: DispatchOptions
    route: Route | None = None  # the best strategy's alternates, retries and hedges
    expect: AnswerFormat | None = None  # the structure the client asked answers to have
    path: str = ""  # where on the miners
    price: int = 0  # credits one miner's answer costs
    wire: Wire | None = None  # how a kind other than chat talks

    @property
    def miner_kwargs(self) -> dict[str, Any]:
        return {
            "keypair": self.keypair,
            "path": self.path,
            "allow_private": self.directory.network == "local",
            "route": self.route,
            "expect": self.expect,
            "wire": self.wire,
        }


def _key_strategy(key: ApiKey, config_default: str) -> Strategy:
    return _key_strategy_text(key.default_strategy, config_default)


def _key_strategy_text(*texts: str) -> Strategy:
    """The first of ``texts`` that names a strategy, else the default (uid 0)."""
    for text in texts:
        try:
            strategy = parse_strategy(text)
        except ValueError:
            log.warning("ignoring malformed default strategy %r", text)
            continue
        if strategy:
            return strategy
    return DEFAULT


# Subjects the rate limits refused lately (until their retry-after), in this
# worker: their calls wait for the count before holding credits, so a client
# hammering past its limit costs no hold and release per refusal.
_refused_lately: dict[str, float] = {}
_REFUSED_MEMORY = 10_000


def _retrieve(counting: asyncio.Future) -> None:
    """Collect a count's outcome when nobody waits for it any more (a client gone)."""
    if not counting.cancelled():
        counting.exception()


class GatewayCall:
    """Use as ``async with GatewayCall(request, route) as call:``; the request
    log is written on the way out, with the error code if one was raised. A
    streamed answer takes the log over (``hand_off``) and writes it when the
    stream ends."""

    def __init__(self, request, route: str) -> None:
        self.started = time.perf_counter()
        self.handed_off = False
        self.settlement: Settlement | None = None  # applied with the log, in one statement
        self.logged_early = False  # a stream's log was written (or tried) from its first content
        self.rate_state: RateState | None = None
        self.counting: asyncio.Future | None = None  # the rate-limit count, while not yet awaited
        self.subject = ""
        self.usage: Usage | None = None  # the answer's tokens, once it was answered
        self.log = RequestLog(
            route=route,
            started_at=timezone.now(),
            client_ip=request.META.get("REMOTE_ADDR"),
            client_request_id=client_request_id(request.headers),
        )
        if (request_id := getattr(request, "request_id", None)) is not None:
            self.log.id = request_id  # the id the answer's x-request-id names (endpoint.asgi)

    async def __aenter__(self) -> GatewayCall:
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        refused = await self._counted_before(exc)
        if not self.handed_off or exc is not None or refused is not None:
            await self.finish(refused or exc)
        if refused is not None:
            raise refused

    def hand_off(self) -> None:
        self.handed_off = True

    async def finish(self, exc: BaseException | None = None) -> None:
        if isinstance(exc, errors.ApiError):
            self.log.status, self.log.api_error = exc.status, exc.code
        elif isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
            self.log.status, self.log.api_error = 499, "ClientClosedRequest"
        elif (unavailable := errors.from_database(exc)) is not None:
            self.log.status, self.log.api_error = unavailable.status, unavailable.code
        elif exc is not None:
            self.log.status, self.log.api_error = 500, "InternalError"
        self.log.elapsed_ms = (time.perf_counter() - self.started) * 1000
        try:
            observe_call(self.log)
            # A rewrite applies the settlement only if the early record never landed.
            await asyncio.shield(write_request_log(self.log, self.settlement, replace=self.logged_early))
        except Exception as failure:
            log.exception("could not write the request log %s", self.log.id)
            if exc is None and not self.handed_off:
                # No answer goes out unlogged and uncharged: the client is told
                # to retry, and the sweeper gives the held credits back.
                raise errors.DatabaseUnavailable() from failure

    async def authenticate(self, authorization: str | None) -> ApiKey:
        """The caller's key, counted against its rate limits (429 before anything is held or sent)."""
        key = await self.identify(authorization)
        await self.admitted()
        return key

    async def identify(self, authorization: str | None) -> ApiKey:
        """The caller's key, its count against the rate limits started but
        not awaited: ``answer`` and ``open_stream`` wait for it together with
        the credit hold (two round trips at once), and a refusal gives the
        hold back. A 429 still comes before any other error and before a
        miner is asked."""
        key = await aauthenticate_key(parse_bearer(authorization))
        await self.admit(key, wait=False)
        return key

    async def admit(self, key: ApiKey, *, wait: bool = True) -> None:
        """Count the call against the rules that apply to the key (its own,
        else the global ones). A key with an owner counts on the owner's
        counter, ``user:<id>``: the user's chat and every key they made share
        one allowance, whichever face the call came through. An operator's
        key (no owner) counts on its own, ``key:<id>``."""
        self.log.key_id, self.log.user_id = key.pk, key.owner_id
        self.log.key_name, self.log.key_prefix = key.name, key.prefix
        rules = rules_for(key.rate_limits, await aruntime_config())
        self.subject = f"user:{key.owner_id}" if key.owner_id is not None else f"key:{key.pk}"
        if rules:
            self.counting = asyncio.ensure_future(check_rate_limits(self.subject, rules))
            self.counting.add_done_callback(_retrieve)
        if wait:
            await self.admitted()

    async def admitted(self) -> None:
        """Wait for the rate-limit count the call started (once); raises its refusal."""
        counting, self.counting = self.counting, None
        if counting is None:
            return
        try:
            self.rate_state = await counting
        except errors.ApiError as refusal:
            _refused_lately[self.subject] = time.monotonic() + getattr(refusal, "retry_after", 1)
            if len(_refused_lately) > _REFUSED_MEMORY:
                _refused_lately.clear()
            raise

    async def _counted_before(self, exc: BaseException | None) -> errors.ApiError | None:
        """A call that ended before waiting for its rate-limit count (bad
        input, no miner) waits for it now: the count's refusal is the
        answer, as when the count came first."""
        if self.counting is None or isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
            return None
        try:
            await self.admitted()
        except errors.ApiError as refusal:
            return refusal if exc is None or isinstance(exc, errors.ApiError) else None
        return None

    def response_headers(self) -> dict[str, str]:
        return self.rate_state.headers() if self.rate_state else {}

    async def plan(self, key: ApiKey, prompt: Prompt) -> Plan:
        self.log.messages = prompt.messages
        expect = AnswerFormat.from_request(prompt.extra.get("response_format"))
        config = await aruntime_config()
        subnet = prompt.subnet
        if subnet is None:
            directory, path, price = await adirectory(), config.miner_path, config.cost_per_answer
            strategy = prompt.strategy or _key_strategy(key, config.default_strategy)
        else:
            directory, path, price = await asubnet_directory(subnet), subnet.miner_path, subnet.price
            strategy = prompt.strategy or _key_strategy_text(subnet.default_strategy)
        # The extra fields reach the miners too (tool descriptions, for one).
        moderated = [*prompt.messages, prompt.extra] if prompt.extra else prompt.messages
        how = {"in_parallel": prompt.in_parallel, "answers": prompt.answers}
        how["respond_on_first_success"] = prompt.respond_on_first_success
        plan = await self._plan(config, directory, strategy, moderated, prompt.timeout, path, how)
        plan.expect, plan.price = expect, price
        return plan

    async def plan_media(self, media: MediaPrompt) -> Plan:
        """``plan`` for a subnet of another kind: its own miners, path, price and default strategy."""
        self.log.messages = media.logged
        config = await aruntime_config()
        subnet = media.subnet
        directory = await asubnet_directory(subnet)
        strategy = media.strategy or _key_strategy_text(subnet.default_strategy)
        moderated = [{"role": "user", "content": text} for text in media.texts]
        plan = await self._plan(config, directory, strategy, moderated, None, subnet.miner_path, {})
        plan.wire, plan.price = media.wire, subnet.price * media.units
        return plan

    async def _plan(
        self,
        config: RuntimeConfig,
        directory: Directory,
        strategy: Strategy,
        moderated: list[Any],
        timeout: float | None,
        path: str,
        how: dict[str, Any],
    ) -> Plan:
        """Where a prompt goes on ``directory``'s miners; ``how``: the DispatchOptions the request sets."""
        if directory.empty:
            raise errors.MetagraphNotSynced()
        keypair = validator_hotkey(config.hotkey_mnemonic)
        self.log.strategy = strategy.summary()
        route = await choose_best(strategy.best, directory) if strategy.best else None
        neurons = route.neurons if route else resolve_neurons(strategy, directory)
        if not neurons:
            raise errors.NoMinerServing()
        if config.moderation_enabled:
            await self.admitted()  # no paid check for a call the limits refuse
        await check_moderation(moderated, config)
        options = DispatchOptions(timeout=min(timeout or config.miner_timeout, config.max_miner_timeout), **how)
        return Plan(config, directory, keypair, neurons, options, route, path=path)

    async def log_early(self) -> bool:
        """Write the log and the charge as they stand now; ``finish`` replaces
        the log with the final state. A stream does this once its first
        content is out, before relaying the rest, so no answer goes on
        unrecorded: if the database can't take it, the call is not charged
        (False) and the stream ends there."""
        entry = replace(self.log, miners=list(self.log.miners), elapsed_ms=(time.perf_counter() - self.started) * 1000)
        self.logged_early = True
        try:
            await asyncio.shield(write_request_log(entry, self.settlement))
            return True
        except Exception:
            log.exception("could not write the early log of %s; the stream ends uncharged", self.log.id)
            settlement = self.settlement
            self.settlement = Settlement(settlement.reservation, 0, settlement.miner_calls)
            self.log.credits_charged = 0
            return False

    async def count_usage(self, answers: list[tuple[Any, list[str]]]) -> Usage:
        """The usage of what was delivered: for each answer (``(reported,
        texts)``, one a miner) its miner's report if valid, else counted; the
        prompt once, every completion added up, as OpenAI counts ``n``. Kept for the log."""
        parts = [await ausage(reported, self.log.messages, texts) for reported, texts in answers]
        self.usage = combined_usage(parts)
        self.log.prompt_tokens, self.log.completion_tokens = self.usage.prompt_tokens, self.usage.completion_tokens
        return self.usage

    def settle(self, reservation: Reservation, used: int, miner_calls: int) -> None:
        """Settle the hold, once per call: what it cost is known now; the
        database applies it together with the request's log (``finish``, or a
        stream's early log), so a charge never lands without its log."""
        if self.settlement is not None:
            raise RuntimeError("a call is settled once")
        self.settlement = Settlement(reservation, used, miner_calls)
        self.log.credits_charged = self.settlement.cost

    async def hold(self, key: ApiKey, credits: int, plan: Plan) -> Reservation:
        """Hold the call's credits until it settles, or until the sweeper
        gives them back once the call can no longer be running."""
        seconds = worst_case_seconds(plan.options)
        if self.counting is not None and _refused_lately.get(self.subject, 0.0) > time.monotonic():
            await self.admitted()  # a client being refused holds nothing
        if self.counting is None:
            return await areserve_credits(key, credits, request_id=self.log.id, seconds=seconds)
        held, counted = await asyncio.gather(
            areserve_credits(key, credits, request_id=self.log.id, seconds=seconds),
            self.admitted(),
            return_exceptions=True,
        )
        if isinstance(counted, BaseException):
            if isinstance(held, Reservation):
                self.settle(held, 0, 0)  # given back with the log
            raise counted
        if isinstance(held, BaseException):
            raise held
        return held

    async def answer(self, key: ApiKey, prompt: Prompt) -> Dispatch:
        plan = await self.plan(key, prompt)
        outcome = await self.ask(key, plan, prompt.payload())
        # Every answer charged is one delivered (/chat returns them all), so each one's tokens count.
        await self.count_usage([((r.answer or {}).get("usage"), answer_texts(r)) for r in outcome.successes])
        return outcome

    async def answer_media(self, key: ApiKey, media: MediaPrompt) -> Dispatch:
        """The first good answer of a subnet of another kind (the view counts its usage)."""
        return await self.ask(key, await self.plan_media(media), media.payload)

    async def ask(self, key: ApiKey, plan: Plan, payload: bytes) -> Dispatch:
        """Hold, dispatch, settle: the answers, or AllMinersFailed."""
        cost = plan.price
        reservation = await self.hold(key, cost * worst_case_answers(plan.neurons, plan.options), plan)
        outcome = Dispatch()
        try:
            outcome = await dispatch(plan.neurons, payload, plan.options, **plan.miner_kwargs)
        finally:
            self.settle(reservation, cost * len(outcome.successes), outcome.queried)
            self.log.miners = _miner_logs(outcome.successes + outcome.failures, outcome.cancelled)
        if not outcome.successes:
            raise errors.AllMinersFailed(failed_responses=outcome.seed_json()["failed_responses"])
        return outcome

    async def open_stream(self, key: ApiKey, prompt: Prompt) -> ChatStream:
        """Race the miners to a first content chunk; 502 if none gets there."""
        plan = await self.plan(key, prompt)
        race, reservation = await self.race(key, plan, prompt.payload(stream=True))
        return ChatStream(self, race, reservation, plan.price)

    async def open_media_stream(self, key: ApiKey, media: MediaPrompt) -> ByteStream:
        """Race the miners of a streamed kind (speech) to their first bytes; 502 if none gets there."""
        plan = await self.plan_media(media)
        race, reservation = await self.race(key, plan, media.payload)
        return ByteStream(self, race, reservation, plan.price)

    async def race(self, key: ApiKey, plan: Plan, payload: bytes) -> tuple[StreamRace, Reservation]:
        """Hold one answer's price and race the miners to a first content; 502 if none gets there."""
        reservation = await self.hold(key, plan.price, plan)
        race = StreamRace()
        try:
            race = await race_streams(plan.neurons, payload, plan.options, **plan.miner_kwargs)
        finally:
            if race.winner is None:
                self.settle(reservation, 0, len(race.failures) + len(race.cancelled))
                self.log.miners = _miner_logs(race.failures, race.cancelled)
        if race.winner is None:
            failed = [r.seed_failure(i) for i, r in enumerate(race.failures)]
            raise errors.AllMinersFailed(failed_responses=failed)
        return race, reservation

    def undo_charge(self) -> None:
        """The answer could not be delivered after all (its media could not be
        stored): nothing is charged, the hold given back with the log."""
        if self.settlement is not None:
            self.settlement = replace(self.settlement, used=0)
            self.log.credits_charged = 0


class ChatStream:
    """The winning miner's chunks, relayed. Once the first content has been
    handed to the server, the call is charged and logged (both written
    before the rest is relayed) and the log is completed when the stream
    ends. A miner that fails after that (a broken connection, invalid JSON,
    an over-long answer, the request's timeout) ends the stream with an
    error (``error``/``error_code``, for the client) and is logged as that
    miner's failure; the answer stays charged, as content was delivered."""

    def __init__(self, call: GatewayCall, race: StreamRace, reservation: Reservation, cost: int) -> None:
        self.call = call
        self.race = race
        self.winner: MinerStream = race.winner
        self.reservation = reservation
        self.cost = cost
        self.said = StreamedAnswer()  # what the miner has said, for the log
        for chunk in self.winner.opening:
            self.said.add(chunk)
        self.error = self.error_code = ""  # why the stream ended early, for the client
        self.miner_error = ""  # what the miner did, for the log
        self.reported_usage: Any = None  # the miner's usage chunk's, if it sent one
        self.usage: Usage | None = None  # once the stream ended

    def _relayed(self, chunk: dict[str, Any]) -> bool:
        """Keep a chunk's usage; False for a usage-only chunk, which the
        client gets (if it asked) as our own closing chunk instead."""
        if isinstance(chunk.get("usage"), dict):
            self.reported_usage = chunk["usage"]
        return not is_usage_only(chunk)

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        call, winner = self.call, self.winner
        miner_calls = 1 + len(self.race.failures) + len(self.race.cancelled)
        exc: BaseException | None = None
        first = winner.first_content
        try:
            for chunk in winner.opening[: first + 1]:
                if self._relayed(chunk):
                    yield chunk
            # The first content has been handed over: now the answer is charged, and logged.
            call.settle(self.reservation, self.cost, miner_calls)
            opening = MinerResult(winner.uid, winner.hotkey, True, content=winner.content)
            opening.response_ms = winner.response_ms
            call.log.miners = _miner_logs([opening, *self.race.failures], self.race.cancelled)
            if not await call.log_early():
                self.error, self.error_code = errors.DatabaseUnavailable.detail, errors.DatabaseUnavailable.code
                return
            for chunk in winner.opening[first + 1 :]:  # the rest of an answer read whole
                if self._relayed(chunk):
                    yield chunk
            async for chunk in winner.rest:
                self.said.add(chunk)
                if self._relayed(chunk):
                    yield chunk
        except MinerFailure as failure:
            # The answer was cut short; what was sent stays sent (and charged).
            self.miner_error = self.error = str(failure)
            self.error_code = "MinerStreamFailed"
        except BaseException as raised:
            exc = raised
            raise
        finally:
            await winner.close()
            if call.settlement is None:
                call.settle(self.reservation, 0, miner_calls)
            answered = MinerResult(winner.uid, winner.hotkey, True, content=self.said.text, error=self.miner_error)
            answered.response_ms = winner.response_ms
            call.log.miners = _miner_logs([answered, *self.race.failures], self.race.cancelled)
            try:
                self.usage = await call.count_usage([(self.reported_usage, [self.said.text])])
            except Exception:
                log.exception("could not count the tokens of %s", call.log.id)
            await call.finish(exc)


def _miner_logs(results: list[MinerResult], cancelled: list[NeuronInfo]) -> list[MinerLog]:
    rows = [MinerLog(r.uid, r.hotkey, r.ok, r.content, r.error, r.status, r.response_ms) for r in results]
    rows += [MinerLog(n.uid, n.hotkey, False, error=CANCELLED) for n in cancelled]
    return rows


class ByteStream:
    """The winning miner's bytes (speech), relayed as they come, charged and
    logged once the first are handed over, as ``ChatStream`` does. A miner
    failing after that is logged as that miner's failure and cuts the
    client's connection: a binary body can't carry an error, and a cut one
    must not pass for a whole one. The log keeps the audio's type, size and
    hash, not its bytes."""

    def __init__(self, call: GatewayCall, race: StreamRace, reservation: Reservation, cost: int) -> None:
        self.call = call
        self.race = race
        self.winner: MinerBytes = race.winner
        self.reservation = reservation
        self.cost = cost
        self.content_type = self.winner.content_type
        self.size = 0
        self.digest = hashlib.sha256()
        self.miner_error = ""
        # Set to store the whole answer when it ends (the config's retain_media): (bytes, content type) -> awaitable.
        self.keep: Any = None
        self.kept: list[bytes] = []

    def _sent(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        self.digest.update(chunk)
        if self.keep is not None:
            self.kept.append(chunk)
        return chunk

    async def _keep(self) -> None:
        if self.keep is not None and self.size:
            try:
                await self.keep(b"".join(self.kept), self.content_type)
            except Exception:
                log.exception("could not keep the audio of %s", self.call.log.id)

    def _said(self) -> MinerResult:
        winner = self.winner
        content = described(self.content_type, self.size, self.digest.hexdigest())
        result = MinerResult(winner.uid, winner.hotkey, True, content=content, error=self.miner_error)
        result.response_ms = winner.response_ms
        return result

    async def chunks(self) -> AsyncIterator[bytes]:
        call, winner = self.call, self.winner
        miner_calls = 1 + len(self.race.failures) + len(self.race.cancelled)
        exc: BaseException | None = None
        try:
            yield self._sent(winner.first)
            call.settle(self.reservation, self.cost, miner_calls)
            call.log.miners = _miner_logs([self._said(), *self.race.failures], self.race.cancelled)
            if not await call.log_early():
                raise errors.DatabaseUnavailable()
            async for chunk in winner.rest:
                yield self._sent(chunk)
        except MinerFailure as failure:
            self.miner_error = str(failure)
            raise errors.StreamCut(f"miner uid {winner.uid}: {failure}") from None
        except BaseException as raised:
            exc = raised
            raise
        finally:
            await winner.close()
            if call.settlement is None:
                call.settle(self.reservation, 0, miner_calls)
            call.log.miners = _miner_logs([self._said(), *self.race.failures], self.race.cancelled)
            await self._keep()
            await call.finish(exc)
