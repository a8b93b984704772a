"""Wiring: settings → registry, central identity, MCP sessions, planner → the compiled graph
and the run Context its nodes receive.

The embedded sandbox and real AWS go through the same code: only the registry, the MCP
endpoint, the STS endpoint and the central credentials differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from opsagent.access import AccountSessions, AccountSlots, ReadCache, RunReads
from opsagent.access.gateway import GatewayReads, bearer_token
from opsagent.graph.context import Context
from opsagent.graph.freeform_worker import ToolLoopWorker
from opsagent.graph.graph import build_graph, graph
from opsagent.graph.models import Answer
from opsagent.graph.planner import Planner, rule_planner
from opsagent.graph.planner.model import ModelPlanner, bedrock_chat_model
from opsagent.graph.worker import FreeformWorker
from opsagent.registry import LiveRegistry, Registry
from opsagent.service.accounts import ConfigurationError, account_sessions, open_accounts
from opsagent.service.logs import question_audit
from opsagent.service.settings import Settings


def model_deps(
    settings: Settings,
    sessions: AccountSessions | None,
    *,
    make_model: Callable[[str], BaseChatModel] = bedrock_chat_model,
) -> tuple[Planner, FreeformWorker | None]:
    """The planner and freeform worker OPSAGENT_MODEL asks for; the rule planner alone when
    it is unset. ``make_model`` builds the chat model from the setting (a fake in tests)."""
    if not settings.model:
        return rule_planner, None
    if sessions is None:  # open_agent makes them whenever a model is configured
        raise ConfigurationError("the model path needs the agent's own AWS MCP sessions")
    try:
        model = make_model(settings.model)
    except ValueError as exc:  # an unknown provider or no AWS region: say what to set
        raise ConfigurationError(str(exc)) from None
    return ModelPlanner(model, fallback=rule_planner), ToolLoopWorker(model, sessions.tools)


class RunConfig(dict):
    """One run's RunnableConfig, as a dict (``thread_id`` in ``configurable``, where the
    checkpointer looks; a caller may add ``metadata``), and the run's Context as
    ``.context``: what ``Agent.stream`` passes to the graph as ``context=``. ``.bearer_token``
    is the caller's own checked token, forwarded to an AgentCore Gateway (never in the dict,
    so never in a checkpoint)."""

    def __init__(
        self, config: dict[str, Any], context: Context, bearer_token: str | None = None
    ) -> None:
        super().__init__(config)
        self.context = context
        self.bearer_token = bearer_token


@dataclass
class Agent:
    graph: Any
    # A registry file's registry, or one kept fresh from AWS Organizations.
    registry_source: Registry | LiveRegistry
    # Our own SigV4 sessions to the AWS MCP Server: the direct path, and the model path's
    # tools. None over an AgentCore Gateway with no model (the agent holds no AWS identity).
    sessions: AccountSessions | None
    settings: Settings
    # The run context without its caller: Agent.config adds user and visible accounts.
    base_context: Context
    sandbox: Any = None
    # OPSAGENT_VIA=gateway: the reads through the Gateway, and on the embedded sandbox the
    # local Gateway stand-in in front of the bridge.
    gateway: GatewayReads | None = None
    gateway_stand_in: Any = None

    @property
    def registry(self) -> Registry:
        """The accounts now: a live registry's last good discovery."""
        source = self.registry_source
        if isinstance(source, LiveRegistry):
            assert source.registry is not None, "open_agent loads it before anything runs"
            return source.registry
        return source

    def context(
        self,
        user: str | None = None,
        visible_accounts: set[str] | None = None,
        *,
        groups: tuple[str, ...] = (),
        fresh: bool = False,
    ) -> Context:
        """The Context of one run by ``user`` (the configured user when None); ``fresh``
        reads every account again instead of reusing recent reads."""
        return dataclasses.replace(
            self.base_context,
            registry=self.registry,
            user=user or self.settings.user,
            groups=tuple(groups),
            visible_accounts=frozenset(visible_accounts) if visible_accounts is not None else None,
            fresh=fresh,
        )

    def config(
        self,
        thread_id: str | None = None,
        user: str | None = None,
        visible_accounts: set[str] | None = None,
        *,
        groups: tuple[str, ...] = (),
        fresh: bool = False,
        bearer_token: str | None = None,
    ) -> RunConfig:
        """One run's config; ``bearer_token``: the caller's own token, checked by the service,
        which an AgentCore Gateway is sent instead of OPSAGENT_GATEWAY_TOKEN."""
        context = self.context(user, visible_accounts, groups=groups, fresh=fresh)
        return RunConfig(
            {"configurable": {"thread_id": thread_id or str(uuid.uuid4())}},
            context,
            bearer_token=bearer_token,
        )

    async def stream(self, question: str, config: RunConfig) -> AsyncIterator[dict | Answer]:
        """One question's run as it happens: each progress event (a dict, see graph/graph.py),
        then the Answer. The one streaming loop the CLI, the service and the evals share."""
        if not isinstance(config, RunConfig):  # no Context: no user, no account limits
            raise TypeError("Agent.stream takes the RunConfig Agent.config returns")
        if isinstance(self.registry_source, LiveRegistry):
            # Starts a rediscovery in the background when one is due; never waits for it.
            await self.registry_source.current()
        context = config.context
        # The run's task and every task it starts (graph nodes, the read cache's reads) see
        # the caller's token; GatewayReads sends it (opsagent/access/gateway.py).
        forwarded = bearer_token.set(config.bearer_token) if config.bearer_token else None
        try:
            # aclosing: the run's end (or its cancellation) closes the inner loop at once.
            async with contextlib.aclosing(self._stream(question, config, context)) as items:
                async for item in items:
                    yield item
        finally:
            if forwarded is not None:
                with contextlib.suppress(ValueError):  # closed from another context
                    bearer_token.reset(forwarded)

    async def _stream(
        self, question: str, config: RunConfig, context: Context
    ) -> AsyncGenerator[dict | Answer, None]:
        answer: Answer | None = None
        with question_audit(
            question,
            user=context.user,
            groups=context.groups,
            thread_id=config["configurable"].get("thread_id"),
            visible_accounts=context.visible_accounts,
        ) as audited:
            async for mode, chunk in self.graph.astream(
                {"question": question},
                config,
                context=context,
                stream_mode=["custom", "values"],
            ):
                if mode == "custom":
                    if chunk.get("event") == "plan":  # asked, even if the run never ends
                        audited["asked"] = chunk["plan"]["accounts"]
                    yield chunk
                elif mode == "values":
                    # The last values chunk is the final state; earlier ones may still hold
                    # the previous turn's answer.
                    answer = chunk.get("answer")
            if answer is None:
                raise RuntimeError("the graph finished without an answer")
            audited["answer"] = answer
            yield answer

    async def ask(self, question: str, **config: Any) -> Answer:
        """Answer one question without streaming (benchmarks, evals)."""
        async for item in self.stream(question, self.config(**config)):
            if isinstance(item, Answer):
                return item
        raise AssertionError("Agent.stream always ends with the answer")


# Allocations between young-generation collections: CPython's default is 700.
GC_YOUNG_THRESHOLD = 50_000


def _tune_garbage_collector() -> None:
    """Fewer, cheaper garbage collections for a process answering over hundreds of accounts.

    A question over 500 accounts allocates millions of short-lived objects (MCP messages,
    parsed answers, rows) beside hundreds of long-lived ones (sessions, credentials), and
    CPython's default thresholds make the collector walk the long-lived heap again and again.
    What start-up made (botocore's service models, the compiled graph, the sandbox) is frozen
    out of the collector's generations, and the young generation is collected every
    GC_YOUNG_THRESHOLD allocations instead of 700. Measured (benchmarks/org_scale.py, split
    layout, agent CPU per account per warm question): freezing alone 6.1 -> 4.3 ms at 100
    accounts; at 500 accounts 7.0 ms as before, 4.8 ms with the threshold as well.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


@asynccontextmanager
async def open_agent(
    settings: Settings | None = None, *, checkpointer: Any = None, planner=None
) -> AsyncIterator[Agent]:
    settings = settings or Settings()
    stand_in = None  # the embedded sandbox's AgentCore Gateway stand-in (OPSAGENT_VIA=gateway)
    gateway_url = settings.gateway_url
    gateway_token = settings.gateway_token.get_secret_value() if settings.gateway_token else None
    accounts = await open_accounts(
        settings, given="a Gateway URL" if settings.gateway_url else "an MCP endpoint"
    )
    sandbox = accounts.sandbox
    registry = accounts.registry
    via_gateway = settings.via == "gateway"
    # Our own SigV4 sessions: the direct path, and the model path's tools (which stay SigV4
    # over a Gateway too). Over a Gateway with no model the agent needs no AWS identity.
    sessions: AccountSessions | None = None
    try:
        if sandbox is not None and via_gateway:
            stand_in, minted = await asyncio.to_thread(_sandbox_gateway, sandbox, settings)
            gateway_url, gateway_token = stand_in.endpoint, gateway_token or minted
        if via_gateway and not gateway_token and not _forwards_tokens(settings):
            raise ConfigurationError(
                "OPSAGENT_VIA=gateway needs a bearer token for the AgentCore Gateway: set "
                "OPSAGENT_GATEWAY_TOKEN (the service's own), or OPSAGENT_JWT_* auth so that "
                "each caller's token is forwarded"
            )
        if not via_gateway or settings.model or sandbox is not None:
            sessions = account_sessions(settings, accounts)
    except BaseException:
        if stand_in is not None:
            await asyncio.to_thread(stand_in.stop)
        await accounts.stop_sandbox()
        raise
    gateway = (
        GatewayReads(
            endpoint=gateway_url,
            token=gateway_token,
            target=settings.gateway_target,
            # No call outlives its account's deadline; the deadline itself is the worker's.
            call_timeout=settings.account_timeout,
        )
        if via_gateway and gateway_url is not None
        else None
    )
    reads: RunReads
    if gateway is not None:
        reads = gateway
    else:
        assert sessions is not None, "the direct path has its sessions"
        reads = sessions.run_reads
    try:
        # Inside the try: a bad OPSAGENT_MODEL must still stop the sandbox and sessions.
        default_planner, freeform_worker = model_deps(settings, sessions)
        context = Context(
            registry=registry if isinstance(registry, Registry) else await registry.current(),
            run_reads=ReadCache(reads, max_age_s=settings.data_max_age),
            planner=planner or default_planner,
            user=settings.user,
            account_timeout=settings.account_timeout,
            freeform_worker=freeform_worker,
            account_slots=AccountSlots(settings.max_accounts_in_flight),
            sandbox=sandbox is not None,
        )
        compiled = graph if checkpointer is None else build_graph(checkpointer)
        agent = Agent(
            compiled,
            registry,
            sessions,
            settings,
            context,
            sandbox,
            gateway=gateway,
            gateway_stand_in=stand_in,
        )
        _tune_garbage_collector()
        yield agent
    finally:
        if isinstance(registry, LiveRegistry):
            await registry.aclose()
        if gateway is not None:
            await gateway.aclose()
        if sessions is not None:
            await sessions.aclose()
            sessions.credentials.close()
        if stand_in is not None:
            await asyncio.to_thread(stand_in.stop)
        if sandbox is not None:
            await asyncio.to_thread(sandbox.stop)


def _forwards_tokens(settings: Settings) -> bool:
    """Whether the HTTP service checks callers' tokens (OPSAGENT_JWT_*), which are then
    forwarded to the Gateway."""
    return bool(settings.jwt_secret or settings.jwt_jwks_url or settings.jwt_discovery_url)


def _sandbox_gateway(sandbox: Any, settings: Settings) -> tuple[Any, str | None]:
    """The sandbox's Gateway stand-in in front of the bridge, and a token it accepts.

    The stand-in trusts the same issuer as the HTTP service (OPSAGENT_JWT_*), as a deployed
    Gateway's customJWTAuthorizer and the Runtime's would, so callers' forwarded tokens
    verify; with no auth configured it has a random HS256 secret of its own. The token is
    minted for the configured user when the key is a secret this process holds (otherwise
    OPSAGENT_GATEWAY_TOKEN must give one).
    """
    import secrets

    from opsagent.bridge.local import start_gateway
    from opsagent.sandbox.gateway import JwtAuthorizer, mint_token

    audiences = settings.jwt_allowed_audiences or (
        [settings.jwt_audience] if settings.jwt_audience else None
    )
    clients = settings.jwt_allowed_clients
    checks: dict[str, Any] = {
        "allowed_audiences": audiences,
        "allowed_clients": clients,
        "issuer": settings.jwt_issuer,
        "leeway_s": settings.jwt_leeway_seconds,
    }
    if settings.jwt_secret is not None:
        authorizer = JwtAuthorizer(secret=settings.jwt_secret.get_secret_value(), **checks)
    elif settings.jwt_jwks_url is not None:
        authorizer = JwtAuthorizer(jwks_url=settings.jwt_jwks_url.strip(), **checks)
    elif settings.jwt_discovery_url is not None:
        import httpx

        url = settings.jwt_discovery_url.strip()
        try:
            document = httpx.get(url, timeout=10).raise_for_status().json()
            jwks_uri = document["jwks_uri"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(
                f"OPSAGENT_JWT_DISCOVERY_URL: {url} cannot be read for the sandbox's Gateway "
                f"({type(exc).__name__}: {exc})"
            ) from None
        checks["issuer"] = checks["issuer"] or document.get("issuer")
        authorizer = JwtAuthorizer(jwks_url=jwks_uri, **checks)
    else:
        authorizer = JwtAuthorizer(secret=secrets.token_urlsafe(32))
    # The bridge checks the same tokens (it learns who asks from the forwarded one): the
    # service's own token settings, or, with none, the stand-in's secret (start_gateway).
    bridge_settings = (
        {
            name: getattr(settings, name)
            for name in type(settings).model_fields
            if name.startswith("jwt_")
        }
        if _forwards_tokens(settings)
        else None
    )
    stand_in = start_gateway(sandbox, authorizer=authorizer, bridge_settings=bridge_settings)
    token = None
    if authorizer.secret is not None:
        token = mint_token(
            authorizer.secret,
            subject=settings.user,
            audience=audiences[0] if audiences else None,
            client_id=clients[0] if clients else None,
            issuer=authorizer.issuer,
        )
    return stand_in, token
