"""botocore clients for ``call_boto3``, each call signed as its caller.

Clients are cached per service and region in a bounded LRU and shared by all callers: each
call binds its caller's credentials to the worker thread for the time of the call, which is
when botocore signs (creating a client per caller would cost 8-25 ms per account, service and
region). Each client also keeps the endpoints it resolved (``_EndpointCache``). An unknown
service or operation raises ``UnknownOperation`` (a ``ValueError``).
"""

from __future__ import annotations

import difflib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore import xform_name
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    Credentials,
    ReadOnlyCredentials,
)

# Resolved endpoints kept per client: S3 has one per bucket, other services a handful.
_ENDPOINTS_PER_CLIENT = 1024


class UnknownOperation(ValueError):
    """call_boto3 was given a service or operation botocore does not know."""


@dataclass(frozen=True)
class CallerCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


class _ThreadCaller(Credentials):
    """The credentials of the caller bound to the current thread.

    botocore signs a request in the thread that makes the call and reads credentials only
    then (account-id endpoint builtins are deferred too), so one client per service and
    region serves every caller: each request is signed with its own caller's key, secret and
    token. That spares creating a client per caller (8-25 ms each for EC2, S3, RDS).
    """

    method = "opsagent-sandbox-caller"

    def __init__(self) -> None:  # no super().__init__: the values live per thread
        self._local = threading.local()

    @contextmanager
    def bound(self, creds: CallerCredentials) -> Iterator[None]:
        previous = getattr(self._local, "creds", None)
        self._local.creds = creds
        try:
            yield
        finally:
            self._local.creds = previous

    def _current(self) -> CallerCredentials:
        creds = getattr(self._local, "creds", None)
        if creds is None:
            raise RuntimeError("no caller is bound to this thread: use BotoClients.call")
        return creds

    @property  # type: ignore[override]
    def access_key(self) -> str:
        return self._current().access_key_id

    @property  # type: ignore[override]
    def secret_key(self) -> str:
        return self._current().secret_access_key

    @property  # type: ignore[override]
    def token(self) -> str | None:
        return self._current().session_token

    @property  # type: ignore[override]
    def account_id(self) -> None:
        return None

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        creds = self._current()
        return ReadOnlyCredentials(
            creds.access_key_id, creds.secret_access_key, creds.session_token
        )


class _ThreadCallerProvider(CredentialProvider):
    METHOD = _ThreadCaller.method
    CANONICAL_NAME = "OpsagentSandboxCaller"

    def __init__(self, caller: _ThreadCaller) -> None:
        super().__init__()
        self._caller = caller

    def load(self) -> _ThreadCaller:
        return self._caller


class _EndpointCache:
    """One client's resolved endpoints, by the parameters botocore's endpoint rules take.

    botocore keeps resolved endpoints in one LRU of 100 entries shared by every client of the
    process; S3 calls key it by bucket, so the buckets of a few dozen accounts evict every
    entry and each call walks the rules again (0.15-0.2 ms, a tenth of a call's CPU here).
    """

    def __init__(self, provider: Any, size: int) -> None:
        self._provider = provider
        self._size = size
        self._lock = threading.Lock()
        self._resolved: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def resolve_endpoint(self, **params: Any) -> Any:
        key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))
        try:
            with self._lock:
                found = self._resolved.get(key)
                if found is not None:
                    self._resolved.move_to_end(key)
                    return found
        except TypeError:  # a value botocore's own cache could not hash either
            return self._provider.resolve_endpoint(**params)
        found = self._provider.resolve_endpoint(**params)  # errors are not cached
        with self._lock:
            self._resolved[key] = found
            if len(self._resolved) > self._size:
                self._resolved.popitem(last=False)
        return found

    def __getattr__(self, name: str) -> Any:  # the ruleset and the rest, as botocore's
        return getattr(self._provider, name)


class BotoClients:
    """botocore clients per (service, region) in a bounded LRU, called as a given caller.

    Thread-safe: clients are created under a lock (botocore sessions are not thread-safe for
    that) and called from any number of threads, each call bound to its caller.
    """

    def __init__(
        self, endpoint_url: str | None, max_clients: int = 256, max_connections: int = 32
    ) -> None:
        self.endpoint_url = endpoint_url
        self._caller = _ThreadCaller()
        self._session = botocore.session.get_session()
        # The session's only credentials: the caller bound to the calling thread.
        self._session.register_component(
            "credential_provider", CredentialResolver([_ThreadCallerProvider(self._caller)])
        )
        self._lock = threading.Lock()
        self._clients: OrderedDict[tuple[str, str], BaseClient] = OrderedDict()
        self._max_clients = max_clients
        self._services: frozenset[str] | None = None
        self._operations: dict[str, dict[str, str]] = {}
        self._config = Config(
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            # As many connections as worker threads calling: none is opened and discarded.
            max_pool_connections=max_connections,
            # Loopback endpoints have no per-bucket host names.
            s3={"addressing_style": "path"},
            user_agent_extra="opsagent-sandbox-mcp",
        )

    def operations(self, service_name: str) -> dict[str, str]:
        """PascalCase API name -> botocore method name, for one service."""
        known = self._operations.get(service_name)
        if known is not None:
            return known
        with self._lock:
            if self._services is None:
                self._services = frozenset(self._session.get_available_services())
            if service_name not in self._services:
                close = difflib.get_close_matches(service_name, sorted(self._services), n=3)
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                raise UnknownOperation(f"Unknown service: '{service_name}'.{hint}")
            model = self._session.get_service_model(service_name)
            known = {name: xform_name(name) for name in model.operation_names}
            self._operations[service_name] = known
            return known

    def method_name(self, service_name: str, operation_name: str) -> str:
        operations = self.operations(service_name)
        if operation_name in operations:
            return operations[operation_name]
        by_method = {method: api for api, method in operations.items()}
        if operation_name in by_method:
            hint = f" Use the PascalCase API name '{by_method[operation_name]}'."
        else:
            close = difflib.get_close_matches(operation_name, sorted(operations), n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownOperation(
            f"Unknown operation '{operation_name}' for service '{service_name}': "
            f"operation_name is the PascalCase API operation name (e.g. DescribeInstances).{hint}"
        )

    def client(self, service_name: str, region: str) -> BaseClient:
        key = (service_name, region)
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                self._clients.move_to_end(key)
                return client
            client = self._session.create_client(
                service_name,
                region_name=region,
                endpoint_url=self.endpoint_url,
                config=self._config,
            )
            resolver = getattr(client, "_ruleset_resolver", None)
            if resolver is not None and hasattr(resolver, "_provider"):
                resolver._provider = _EndpointCache(resolver._provider, _ENDPOINTS_PER_CLIENT)
            self._clients[key] = client
            if len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)
            return client

    def call(
        self,
        creds: CallerCredentials,
        service_name: str,
        region: str,
        method: str,
        params: dict[str, Any],
    ) -> dict[str, Any]:
        """One API call, signed with the caller's credentials; without ResponseMetadata."""
        client = self.client(service_name, region)
        with self._caller.bound(creds):
            response = getattr(client, method)(**params)
        response.pop("ResponseMetadata", None)
        return response

    def close(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()
