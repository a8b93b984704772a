"""Which protocol and operation a signed request speaks, from botocore's service models.

The protocol comes from the botocore service models whose signing name is the credential
scope's service, narrowed by the request's own shape where a service speaks several
(CloudWatch: CBOR, JSON or query); the operation from the ``Action`` parameter, the
``X-Amz-Target`` header, the CBOR path, or the REST route of the model's operations. Both
are cached.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.session

Environ = dict[str, Any]


# ----- which protocol, which operation -----


# The request shapes botocore's protocols produce, and the protocols each can be.
_SHAPE_PROTOCOLS = {
    "cbor": ("smithy-rpc-v2-cbor",),
    "json": ("json",),
    "form": ("ec2", "query"),
    "rest": ("rest-json", "rest-xml"),
}


def _request_shape(environ: Environ) -> str:
    if environ.get("HTTP_SMITHY_PROTOCOL", "").lower() == "rpc-v2-cbor":
        return "cbor"
    if environ.get("HTTP_X_AMZ_TARGET"):
        return "json"
    content_type = environ.get("CONTENT_TYPE", "").lower()
    if content_type.startswith("application/x-www-form-urlencoded"):
        return "form"
    if content_type.startswith("application/x-amz-json"):
        return "json"
    query = environ.get("QUERY_STRING", "")
    if query.startswith("Action=") or "&Action=" in query:
        return "form"
    return "rest"


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    query: tuple[tuple[str, str | None], ...]
    rank: tuple[int, int, int]
    operation: str


@dataclass(frozen=True)
class ServiceInfo:
    """One botocore service model's metadata: enough to pick its protocol and shape errors."""

    name: str
    metadata: Mapping[str, Any]

    @property
    def signing_name(self) -> str:
        return str(
            self.metadata.get("signingName") or self.metadata.get("endpointPrefix") or self.name
        )

    @property
    def protocols(self) -> tuple[str, ...]:
        """The protocols it speaks, botocore's preference first."""
        protocols = list(self.metadata.get("protocols") or [])
        if self.metadata.get("protocol") and self.metadata["protocol"] not in protocols:
            protocols.append(self.metadata["protocol"])
        return tuple(protocols)


@dataclass(frozen=True)
class Resolved:
    """What a request speaks: its protocol and the services that may serve it there (the
    service named like the signing name first)."""

    protocol: str
    services: tuple[ServiceInfo, ...] = ()

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.services[0].metadata if self.services else {}


def _route(name: str, operation: Mapping[str, Any]) -> _Route:
    http = operation.get("http", {})
    path, _, query = str(http.get("requestUri", "/")).partition("?")
    regex, literal = "", 0
    for piece in re.split(r"(\{[^}]+\})", path.rstrip("/")):
        if piece.startswith("{"):
            regex += ".+" if piece.endswith("+}") else "[^/]+"
        else:
            regex += re.escape(piece)
            literal += len(piece)
    needs = tuple(
        (key, value if sep else None)
        for key, sep, value in (part.partition("=") for part in query.split("&") if part)
    )
    # More query keys, then more literal path, then not a special endpoint's twin (S3's
    # ListDirectoryBuckets shares ListBuckets' "GET /").
    special = 0 if operation.get("staticContextParams") else 1
    return _Route(
        method=str(http.get("method", "POST")).upper(),
        pattern=re.compile(regex + "/?"),
        query=needs,
        rank=(len(needs), literal, special),
        operation=name,
    )


class ServiceModels:
    """botocore's service models by SigV4 signing name; the protocol a request speaks.

    The first request that needs it reads the metadata of every model botocore has (its
    opening bytes only: about a tenth of a second; the models themselves are not kept) into
    an index by signing name; answers are cached per (signing name, request shape). A REST
    service's full model is loaded, once, only to tell which operation a request calls.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loader = botocore.session.get_session().get_component("data_loader")
        self._index: dict[str, tuple[ServiceInfo, ...]] | None = None
        self._resolved: dict[tuple[str, str], Resolved] = {}
        self._routes: dict[str, list[_Route]] = {}

    def resolve(self, signing_name: str, environ: Environ) -> Resolved:
        """The protocol this request speaks, and the services it may be for."""
        shape = _request_shape(environ)
        key = (signing_name, shape)
        known = self._resolved.get(key)
        if known is not None:
            return known
        with self._lock:
            resolved = None
            for service in self._services(signing_name):
                protocol = next(
                    (p for p in service.protocols if p in _SHAPE_PROTOCOLS[shape]), None
                )
                if protocol is None:
                    continue
                if resolved is None:
                    resolved = Resolved(protocol, (service,))
                elif protocol == resolved.protocol:
                    resolved = Resolved(protocol, (*resolved.services, service))
            if resolved is None:  # no model speaks for it: the request's shape alone decides
                resolved = Resolved(
                    {"rest": "rest-json", "form": "query"}.get(shape) or _SHAPE_PROTOCOLS[shape][0]
                )
            self._resolved[key] = resolved
            return resolved

    def rest_operation(
        self, services: Iterable[ServiceInfo], method: str, path: str, query: Mapping[str, str]
    ) -> str | None:
        """The operation whose REST route this request takes (the most specific match)."""
        for service in services:
            with self._lock:
                routes = self._routes.get(service.name)
                if routes is None:
                    model = self._loader.load_service_model(service.name, "service-2")
                    routes = [_route(name, op) for name, op in model["operations"].items()]
                    self._routes[service.name] = routes
            best: _Route | None = None
            for route in routes:
                if route.method != method or not route.pattern.fullmatch(path):
                    continue
                if not all(
                    key in query and (value is None or query[key] == value)
                    for key, value in route.query
                ):
                    continue
                if best is None or route.rank > best.rank:
                    best = route
            if best is not None:
                return best.operation
        return None

    def _services(self, signing_name: str) -> tuple[ServiceInfo, ...]:
        if self._index is None:
            index: dict[str, list[ServiceInfo]] = {}
            for name in sorted(self._loader.list_available_services("service-2")):
                info = ServiceInfo(name, self._metadata(name))
                index.setdefault(info.signing_name, []).append(info)
            self._index = {
                signing: tuple(sorted(infos, key=lambda i: (i.name != signing, i.name)))
                for signing, infos in index.items()
            }
        return self._index.get(signing_name, ())

    def _metadata(self, name: str) -> Mapping[str, Any]:
        """A model's metadata, read past the loader's cache (which would keep every model).

        Models open with their metadata object: it is decoded from the file's first bytes,
        not the whole (up to megabytes of) model; the whole file only if that fails.
        """
        version = self._loader.determine_latest_version(name, "service-2")
        for root in self._loader.search_paths:
            base = os.path.join(root, name, version, "service-2")
            for path, opener in ((base + ".json", open), (base + ".json.gz", gzip.open)):
                if not os.path.isfile(path):
                    continue
                with opener(path, "rb") as stream:
                    head = stream.read(_METADATA_BYTES).decode("utf-8", "replace")
                metadata = _leading_metadata(head)
                if metadata is not None:
                    return metadata
                data = self._loader.file_loader.load_file(base)
                return (data or {}).get("metadata", {})
        return {}


_METADATA_BYTES = 16384


def _leading_metadata(head: str) -> Mapping[str, Any] | None:
    """The ``"metadata": {...}`` object at the start of a model's text, None if not whole."""
    match = re.search(r'"metadata"\s*:\s*\{', head)
    if match is None:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(head, match.end() - 1)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


MODELS = ServiceModels()


def _operation(
    resolved: Resolved, environ: Environ, form: Callable[[], Mapping[str, str]]
) -> str | None:
    """The API operation a request calls (``DescribeInstances``), None when unknown."""
    if resolved.protocol in ("ec2", "query"):
        return form().get("Action") or None
    if resolved.protocol == "json":
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        return target.rsplit(".", 1)[-1] or None
    if resolved.protocol == "smithy-rpc-v2-cbor":
        path = environ.get("PATH_INFO", "")
        return path.rsplit("/operation/", 1)[-1] if "/operation/" in path else None
    query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    return MODELS.rest_operation(
        resolved.services,
        environ.get("REQUEST_METHOD", "GET").upper(),
        environ.get("PATH_INFO", "/") or "/",
        query,
    )
