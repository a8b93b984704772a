"""AWS error answers as each protocol writes them, so botocore parses them into the very
``ClientError`` (code, message, HTTP status) AWS's own answer gives.

==================== ====================================================================
protocol             shape
==================== ====================================================================
ec2                  ``<Response><Errors><Error><Code>…</Code><Message>…`` + RequestID
query                ``<ErrorResponse><Error><Type>Sender</Type><Code>…`` (namespaced)
rest-xml, S3         ``<Error><Code>…</Code><Message>…`` + RequestId, HostId (no body on
                     HEAD: botocore's code is then the HTTP status)
rest-xml, others     as query
json                 ``{"__type", "message"}`` + ``x-amzn-ErrorType``
rest-json            ``{"message"}`` + ``x-amzn-ErrorType``
smithy-rpc-v2-cbor   CBOR ``{"__type", "message"}``
==================== ====================================================================

json and CBOR services that are ``awsQueryCompatible`` (SQS, CloudWatch) also send
``x-amzn-query-error: <query code>;Sender``, and botocore reports that query code.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from opsagent.sandbox.protocols import Resolved

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}
S3_SIGNING_NAMES = frozenset({"s3", "s3-object-lambda", "s3express"})


@dataclass(frozen=True)
class ErrorAnswer:
    """One AWS error answer: HTTP status, error code and message, in one protocol."""

    protocol: str
    status: int
    code: str
    message: str
    # The query protocol's code for this error, sent by awsQueryCompatible json/CBOR services.
    query_code: str | None = None
    json_version: str = "1.1"
    xml_namespace: str | None = None
    s3_style: bool = False
    # Extra elements of an S3 <Error> (S3 names the access key it did not know).
    s3_fields: tuple[tuple[str, str], ...] = ()

    @property
    def botocore_code(self) -> str:
        """The code botocore reports for this answer."""
        if self.query_code and self.protocol in ("json", "smithy-rpc-v2-cbor"):
            return self.query_code
        return self.code

    def render(self, method: str = "POST") -> tuple[str, list[tuple[str, str]], bytes]:
        """(status line, headers, body)."""
        request_id = str(uuid.uuid4())
        headers: list[tuple[str, str]] = []
        code, message = escape(self.code), escape(self.message)
        if self.protocol == "ec2":
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Response><Errors><Error><Code>{code}</Code>"
                f"<Message>{message}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>"
            ).encode()
            headers.append(("Content-Type", "text/xml;charset=UTF-8"))
        elif self.protocol == "query" or (self.protocol == "rest-xml" and not self.s3_style):
            xmlns = f' xmlns="{escape(self.xml_namespace)}"' if self.xml_namespace else ""
            body = (
                f"<ErrorResponse{xmlns}><Error><Type>Sender</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
            headers += [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        elif self.protocol == "rest-xml":
            host_id = uuid.uuid4().hex
            extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in self.s3_fields)
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message>{extra}"
                f"<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>"
            ).encode()
            headers += [
                ("Content-Type", "application/xml"),
                ("x-amz-request-id", request_id),
                ("x-amz-id-2", host_id),
            ]
        elif self.protocol == "smithy-rpc-v2-cbor":
            body = _cbor_map({"__type": self.code, "message": self.message})
            headers += [
                ("Content-Type", "application/cbor"),
                ("smithy-protocol", "rpc-v2-cbor"),
                ("x-amzn-RequestId", request_id),
            ]
        elif self.protocol == "json":
            body = json.dumps({"__type": self.code, "message": self.message}).encode()
            headers += [
                ("Content-Type", f"application/x-amz-json-{self.json_version}"),
                ("x-amzn-ErrorType", self.code),
                ("x-amzn-RequestId", request_id),
            ]
        else:  # rest-json
            body = json.dumps({"message": self.message}).encode()
            headers += [
                ("Content-Type", "application/json"),
                ("x-amzn-ErrorType", self.code),
                ("x-amzn-RequestId", request_id),
            ]
        if self.query_code and self.protocol in ("json", "smithy-rpc-v2-cbor"):
            headers.append(("x-amzn-query-error", f"{self.query_code};Sender"))
        if method == "HEAD":
            body = b""  # a HEAD answer has no body (S3 answers a refused HEAD with its status)
        headers.append(("Content-Length", str(len(body))))
        return f"{self.status} {_REASONS.get(self.status, 'Error')}", headers, body

    def response(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        status, headers, body = self.render(environ.get("REQUEST_METHOD", "POST"))
        start_response(status, headers)
        return [body]


@dataclass(frozen=True)
class ProtocolContext:
    """What shapes an error answer besides its code: from the signing service's model."""

    protocol: str
    query_compatible: bool
    json_version: str
    xml_namespace: str | None
    s3_style: bool


def protocol_context(resolved: Resolved, signing_name: str) -> ProtocolContext:
    metadata = resolved.metadata
    return ProtocolContext(
        protocol=resolved.protocol,
        query_compatible="awsQueryCompatible" in metadata,
        json_version=str(metadata.get("jsonVersion", "1.1")),
        xml_namespace=metadata.get("xmlNamespace"),
        s3_style=signing_name in S3_SIGNING_NAMES,
    )


def _cbor_head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    if length < 0x100:
        return bytes([major << 5 | 24, length])
    if length < 0x10000:
        return bytes([major << 5 | 25]) + length.to_bytes(2, "big")
    return bytes([major << 5 | 26]) + length.to_bytes(4, "big")


def _cbor_map(values: Mapping[str, str]) -> bytes:
    """A CBOR map of text strings (RFC 8949 major types 5 and 3): all an error body needs."""
    out = bytearray(_cbor_head(5, len(values)))
    for key, value in values.items():
        for text in (key, value):
            data = text.encode()
            out += _cbor_head(3, len(data)) + data
    return bytes(out)
