"""The sandbox: a local AWS for the embedded default, the demo and the tests.

    with start_sandbox() as sandbox:
        sandbox.aws_endpoint          # moto on http://127.0.0.1:PORT, the demo organization seeded
        sandbox.mcp_endpoint          # the AWS MCP Server stand-in, http://127.0.0.1:PORT/mcp
        sandbox.central_credentials   # the central identity (IAM user opsagent, 111111111111)
        sandbox.registry_path         # the demo registry describing the four accounts
        sandbox.scripts               # every aws___run_script call: (account_id, API calls)
        sandbox.deny_regions("222222222222", ["us-west-2"])  # an SCP region deny, enforced
        sandbox.disable_regions("222222222222", ["af-south-1"])  # an opt-in region not enabled
        start_gateway(sandbox)        # an AgentCore Gateway stand-in in front of the bridge
                                      # Lambda (opsagent.bridge.local; never by default)

``start_sandbox(script_latency_ms=300)`` makes every run_script answer take at least that long,
the shape of the real server (about 13-15 s for a one-call script).

Both servers run in background threads of this process and listen on loopback only. One
Sandbox at a time per process (moto's state is process-wide); stop() resets that state, so
start/stop/start gives a fresh organization each time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import boto3
from botocore.credentials import Credentials
from moto.moto_api._internal.models import moto_api_backend

from opsagent.sandbox.mcp_server import (
    MCP_REGION,
    MCP_SERVICE,
    McpServer,
    ScriptLog,
    serve_forever,
)
from opsagent.sandbox.moto_server import MotoServer
from opsagent.sandbox.seed import SeedResult, seed_organization

if TYPE_CHECKING:
    from opsagent.sandbox.gateway import GatewayStandIn

log = logging.getLogger(__name__)

REGISTRY_PATH = Path(__file__).with_name("demo-registry.json")

# moto's state is process-wide: a second running Sandbox would seed into (and its stop()
# would wipe) the first one's accounts.
_running: Sandbox | None = None
_running_lock = threading.Lock()

__all__ = ["REGISTRY_PATH", "Sandbox", "ScriptLog", "serve_mcp", "start_sandbox"]


class Sandbox:
    """moto with the demo organization, and the MCP stand-in in front of it."""

    mcp_service: str = MCP_SERVICE
    mcp_region: str = MCP_REGION
    registry_path: Path = REGISTRY_PATH

    def __init__(self, *, seed: bool = True, script_latency_ms: float = 0) -> None:
        self._seed = seed
        self.script_latency_ms = script_latency_ms
        # Outlives restarts: a test holding sandbox.scripts keeps seeing the new server's calls.
        self._scripts = ScriptLog()
        self._moto: MotoServer | None = None
        self._mcp: McpServer | None = None
        self._seeded: SeedResult | None = None
        self._gateways: list[GatewayStandIn] = []
        # Seconds spent starting: moto, seed, mcp, total.
        self.timings: dict[str, float] = {}

    @property
    def aws_endpoint(self) -> str:
        return self._running_moto().endpoint

    @property
    def mcp_endpoint(self) -> str:
        if self._mcp is None:
            raise RuntimeError("the sandbox is not running")
        return self._mcp.endpoint

    @property
    def scripts(self) -> ScriptLog:
        """Every aws___run_script call as (account_id, number of API calls); ``.clear()`` it."""
        return self._scripts

    @property
    def central_credentials(self) -> Credentials:
        if self._seeded is None:
            raise RuntimeError("the sandbox was started without its seed: no central identity")
        return self._seeded.central_credentials

    def central_session(self) -> boto3.Session:
        """A boto3 session of the central identity, the way an operator's machine has one."""
        creds = self.central_credentials
        return boto3.Session(
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
            aws_session_token=creds.token,
            region_name=self.mcp_region,
        )

    def deny_regions(self, account_id: str, regions: Iterable[str]) -> None:
        """Deny every request of ``account_id`` signed for one of ``regions``, as an SCP with a
        ``StringEquals aws:RequestedRegion`` Deny does (on top of regions already denied).

        Requests signed with the account's credentials (its users, its assumed-role sessions)
        for those regions get AWS's 403 in their service's protocol: EC2
        ``UnauthorizedOperation``, S3/IAM/RDS ``AccessDenied``, DynamoDB/Lambda/EKS/ECS
        ``AccessDeniedException``. STS is exempt: AssumeRole into the account still works.
        Lasts until ``allow_all_regions`` or the sandbox stops (see ``opsagent.sandbox.scp``).
        """
        self._running_moto().region_denials.deny(account_id, regions)

    def allow_all_regions(self, account_id: str) -> None:
        """Lift every region denial of ``account_id``."""
        self._running_moto().region_denials.allow_all(account_id)

    def denied_regions(self, account_id: str) -> frozenset[str]:
        """The regions ``deny_regions`` denies in ``account_id`` now."""
        return self._running_moto().region_denials.regions(account_id)

    def disable_regions(self, account_id: str, regions: Iterable[str]) -> None:
        """Make ``regions`` regions that ``account_id`` has not enabled, as opt-in regions
        (af-south-1, ap-east-1, me-south-1, ...) are until enabled (on top of those already
        disabled there).

        Every request signed with the account's credentials (its users, its assumed-role
        sessions, STS included) for those regions fails authentication the way AWS fails it:
        EC2 ``AuthFailure`` (401), query services ``InvalidClientTokenId`` (403), json and
        rest-json services ``UnrecognizedClientException``, S3 ``InvalidAccessKeyId``; its
        other regions answer. Checked before any SCP deny. AWS lets only opt-in regions be
        disabled; the sandbox does not check. Lasts until ``enable_regions`` or the sandbox
        stops (see ``opsagent.sandbox.optin`` for the sources).
        """
        self._running_moto().disabled_regions.disable(account_id, regions)

    def enable_regions(self, account_id: str, regions: Iterable[str]) -> None:
        """Enable ``regions`` in ``account_id`` again (those not disabled are left as they are)."""
        self._running_moto().disabled_regions.enable(account_id, regions)

    def disabled_regions(self, account_id: str) -> frozenset[str]:
        """The regions ``disable_regions`` has disabled in ``account_id`` now."""
        return self._running_moto().disabled_regions.regions(account_id)

    def stop_with(self, server: GatewayStandIn) -> None:
        """Stop ``server`` (a Gateway stand-in started beside this sandbox, see
        ``opsagent.bridge.local``) when the sandbox stops."""
        self._running_moto()
        self._gateways.append(server)

    @property
    def running(self) -> bool:
        return self._moto is not None

    def start(self) -> Sandbox:
        global _running
        if self._moto is not None:
            return self
        with _running_lock:
            if _running is not None:
                raise RuntimeError(
                    "another Sandbox is running in this process; stop it first "
                    "(moto's state is process-wide)"
                )
            _running = self
        started = time.perf_counter()
        try:
            moto = MotoServer()
            moto.start()
            self._moto = moto
            self.timings["moto"] = round(time.perf_counter() - started, 3)
            if self._seed:
                mark = time.perf_counter()
                self._seeded = seed_organization(moto.endpoint)
                self.timings["seed"] = round(time.perf_counter() - mark, 3)
            mark = time.perf_counter()
            mcp = McpServer(
                moto.endpoint, script_latency_ms=self.script_latency_ms, scripts=self._scripts
            )
            mcp.start()
            self._mcp = mcp
            self.timings["mcp"] = round(time.perf_counter() - mark, 3)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = round(time.perf_counter() - started, 3)
        log.info(
            "sandbox started",
            extra={
                "aws_endpoint": self.aws_endpoint,
                "mcp_endpoint": self.mcp_endpoint,
                "seconds": self.timings,
            },
        )
        return self

    def stop(self) -> None:
        global _running
        while self._gateways:
            self._gateways.pop().stop()
        if self._mcp is not None:
            self._mcp.stop()
            self._mcp = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        with _running_lock:
            if _running is self:
                # moto keeps its state in process-wide backends: forget this organization,
                # so the next start seeds into empty accounts.
                moto_api_backend.reset()
                _running = None
        self._seeded = None

    def _running_moto(self) -> MotoServer:
        if self._moto is None:
            raise RuntimeError("the sandbox is not running")
        return self._moto

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_sandbox(*, seed: bool = True, script_latency_ms: float = 0) -> Sandbox:
    """Start moto on loopback, seed the demo organization (unless told not to), start the MCP."""
    return Sandbox(seed=seed, script_latency_ms=script_latency_ms).start()


def serve_mcp(
    aws_endpoint: str, host: str = "127.0.0.1", port: int = 0, *, script_latency_ms: float = 0
) -> None:
    """Serve only the MCP stand-in (blocking) against an AWS endpoint this process did not seed.

    Used by ``opsagent sandbox serve-mcp --aws-endpoint URL --port N``. Signatures get
    structural checks only, since the endpoint's secrets are not in this process (logged).
    """
    serve_forever(aws_endpoint, host=host, port=port, script_latency_ms=script_latency_ms)
