"""The guard's structural and parameter checks (rule 7 in ``guard.py``): the fan-out walk,
``params`` and ``bind`` against botocore's input shapes, plus the botocore model access and
message helpers the policy in ``guard.py`` shares."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from difflib import get_close_matches
from functools import cache
from typing import Any

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import validate_parameters

from opsagent.access.guard_tables import (
    _MAX_DEPTH,
    _MAX_JSON_DEPTH,
    _MAX_NAME,
    _MAX_PARAMS_JSON,
    _MAX_READS,
    _MAX_SHAPE_DEPTH,
    _NAME_RE,
    _PATH_RE,
)
from opsagent.access.reads import BIND_ROOTS, FanOut, Read

_LOCK = threading.RLock()  # botocore's session, loader and lazy shapes are not thread-safe


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- the walk -------------------------------------------------------------------------------


def _walk(read: Any) -> Iterator[tuple[Any, Any, Any, str | None]]:
    """(read, parent, fanout, structural problem) for the read and every read below it."""
    count = 0
    stack: list[tuple[Any, Any, Any, int]] = [(read, None, None, 0)]
    while stack:
        node, parent, fan, depth = stack.pop()
        count += 1
        if count > _MAX_READS:
            raise _Refused(f"fans out to more than {_MAX_READS} reads")
        if not isinstance(node, Read):
            raise _Refused("is not a Read")
        then = node.__dict__.get("then", [])
        if not isinstance(then, list):
            yield node, parent, fan, "has a `then` that is not a list of FanOut"
            continue
        children: list[tuple[Any, Any, Any, int]] = []
        problem = None
        for child_fan in then:
            if not isinstance(child_fan, FanOut):
                problem = "has a `then` entry that is not a FanOut"
                break
            problem = _fan_problem(child_fan)
            if problem:
                break
            if depth + 1 > _MAX_DEPTH:
                problem = f"nests fan-outs deeper than {_MAX_DEPTH} levels"
                break
            children.extend((c, node, child_fan, depth + 1) for c in child_fan.reads)
        yield node, parent, fan, problem
        stack.extend(reversed(children))  # depth first, in order, like Read.walk()


def _fan_problem(fan: FanOut) -> str | None:
    each, batch, limit, reads = (fan.__dict__.get(k) for k in ("each", "batch", "limit", "reads"))
    if not isinstance(each, str) or len(each) > 200 or not _PATH_RE.fullmatch(each):
        return f"fans out over {_short(each)!s}, which is not a dotted path"
    if batch is not None and (type(batch) is not int or not 1 <= batch <= 100):
        return "has a fan-out batch that is not a whole number from 1 to 100"
    if type(limit) is not int or not 1 <= limit <= 5000:
        return "has a fan-out limit that is not a whole number from 1 to 5000"
    if not isinstance(reads, list) or not reads:
        return "has a fan-out with no reads"
    if not all(isinstance(child, Read) for child in reads):
        return "fans out to something that is not a Read"
    unless = fan.__dict__.get("unless")  # an optional item path, if reads.py carries one
    if unless is not None and (not isinstance(unless, str) or not _PATH_RE.fullmatch(unless)):
        return f"skips items by {_short(unless)}, which is not a dotted path"
    return None


# --- one read ---------------------------------------------------------------------------------


def _names(read: Read) -> tuple[str, str, Any]:
    service, operation, region = (read.__dict__.get(k) for k in ("service", "operation", "region"))
    if not isinstance(service, str) or not isinstance(operation, str):
        raise _Refused("does not name its service and operation as text")
    return service, operation, region


def _check_extras(read: Read) -> None:
    paginate = read.__dict__.get("paginate", True)
    expected = read.__dict__.get("expected_errors", ())
    if not isinstance(paginate, bool):
        raise _Refused("has a `paginate` that is not true or false")
    if (
        not isinstance(expected, tuple | list)
        or len(expected) > 20
        or not all(
            isinstance(code, str) and _NAME_RE.fullmatch(code) and len(code) <= _MAX_NAME
            for code in expected
        )
    ):
        raise _Refused("has expected_errors that are not AWS error codes")


def _check_params(
    read: Read, parent: Read | None, fan: FanOut | None, service: str, operation: str
) -> None:
    params = read.__dict__.get("params", {})
    bind = read.__dict__.get("bind", {})
    if not isinstance(params, dict):
        raise _Refused("has params that are not an object")
    if not isinstance(bind, dict):
        raise _Refused("has a bind that is not an object")
    _check_json(params, 0)
    try:
        size = len(json.dumps(params, allow_nan=False, ensure_ascii=False))
    except (ValueError, TypeError, RecursionError):
        raise _Refused("has params that are not JSON values") from None
    if size > _MAX_PARAMS_JSON:
        raise _Refused(f"has params longer than {_MAX_PARAMS_JSON:,} characters of JSON")
    with _LOCK:
        model = _operation_model(service, operation)
        shape = model.input_shape
        members = shape.members if shape is not None else {}
        filled = dict(params)
        for name, source in bind.items():
            if not isinstance(name, str) or not isinstance(source, str):
                raise _Refused("has a bind whose names or sources are not text")
            if name not in members:
                raise _Refused(
                    f"binds {_short(name)}, which is not a parameter of "
                    f"{operation}{_suggest(name, list(members))}"
                )
            if name in params:
                raise _Refused(f"gives {name} both in params and in bind")
            filled[name] = _bound_dummy(name, source, members[name], parent, fan, operation)
        try:
            validate_parameters(filled, shape) if shape is not None else None
        except ParamValidationError as exc:
            raise _Refused(f"has invalid params ({_validation_message(exc)})") from None
        if shape is None and params:
            raise _Refused(f"has params, but {operation} takes none")


def _bound_dummy(
    name: str, source: str, member: Shape, parent: Read | None, fan: FanOut | None, operation: str
) -> Any:
    """A dummy for a bound parameter, once the binding is known to give what it expects."""
    root, _, path = source.partition(".")
    if parent is None or fan is None:
        raise _Refused(
            f"binds {name} to {_short(source)}, but it is not fanned out from another read"
        )
    if root not in BIND_ROOTS or (path and not _PATH_RE.fullmatch(path)) or len(source) > 200:
        raise _Refused(
            f"binds {name} to {_short(source)}, which is not item, item.<path> or parent.<param>"
        )
    parent_service, parent_operation, _ = _names(parent)
    if root == "parent":
        first = path.split(".", 1)[0]
        given = set(parent.__dict__.get("params", {})) | set(parent.__dict__.get("bind", {}))
        if not path or first not in given:
            raise _Refused(
                f"binds {name} to {source}, a parameter the parent read "
                f"({parent_operation}) does not set"
            )
        with _LOCK:
            parent_input = _operation_model(parent_service, parent_operation).input_shape
            given_shape = _shape_at(parent_input, path.split(".")) if parent_input else None
        if given_shape is None:
            raise _Refused(
                f"binds {name} to {source}, which is not a parameter of {parent_operation}"
            )
    else:
        item = _item_shape(parent_service, parent_operation, fan)
        given_shape = _shape_at(item, path.split(".")) if path else item
        if given_shape is None:
            raise _Refused(
                f"binds {name} to {source}, which is not in the items of "
                f"{parent_operation} {fan.each}"
            )
    expected = member
    if root == "item" and fan.batch is not None:
        if member.type_name != "list":
            raise _Refused(
                f"binds {name} to a batch of items, but {operation} takes "
                f"{_kind(member)} there, not a list"
            )
        expected = member.member
    if not _compatible(given_shape, expected):
        got = f"a batch of {_kind(given_shape)}" if expected is not member else _kind(given_shape)
        hint = " (batch the fan-out)" if expected is member and member.type_name == "list" else ""
        raise _Refused(
            f"binds {name} to {source}, which gives {got}, but {operation} takes "
            f"{_kind(member)} there{hint}"
        )
    return _dummy(member, 0)


def _item_shape(service: str, operation: str, fan: FanOut) -> Shape:
    """The shape of one item the fan-out gives; refuses if ``each``/``unless`` miss."""
    item = _output_path(service, operation, fan.each)
    if item is None:
        raise _Refused(f"fans out over {fan.each!r}, which is not in the answer of {operation}")
    unless = fan.__dict__.get("unless")
    if unless and _shape_at(item, unless.split(".")) is None:
        raise _Refused(
            f"skips items by {unless!r}, which is not in the items of {operation} {fan.each}"
        )
    return item


_NUMBERS = frozenset({"integer", "long", "float", "double"})


def _compatible(given: Shape, expected: Shape) -> bool:
    """Whether a value of shape ``given`` (as JSON) is a value of type ``expected``."""
    a, b = given.type_name, expected.type_name
    if a == b or {a, b} <= {"integer", "long"} or {a, b} <= {"string", "timestamp"}:
        return True
    return a in _NUMBERS and b in ("float", "double")


def _kind(shape: Shape) -> str:
    if shape.type_name == "list":
        return f"a list of {shape.member.type_name}s"
    return f"{'an' if shape.type_name[0] in 'aeiou' else 'a'} {shape.type_name}"


def _output_path(service: str, operation: str, each: str) -> Shape | None:
    """The shape of one item at ``each`` in the operation's answer (lists mapped over)."""
    with _LOCK:
        output = _operation_model(service, operation).output_shape
        return _shape_at(output, each.split(".")) if output is not None else None


def _shape_at(shape: Shape, parts: list[str]) -> Shape | None:
    for part in parts:
        while shape.type_name == "list":
            shape = shape.member
        if shape.type_name != "structure" or part not in shape.members:
            return None
        shape = shape.members[part]
    while shape.type_name == "list":
        shape = shape.member
    return shape


# --- botocore models (cached) -----------------------------------------------------------------


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def _services() -> tuple[str, ...]:
    with _LOCK:
        return tuple(_session().get_available_services())


@cache
def _service_set() -> frozenset[str]:
    return frozenset(_services())


@cache
def _operation_names(service: str) -> frozenset[str]:
    with _LOCK:
        return frozenset(_service_model(service).operation_names)


@cache
def _service_model(service: str) -> ServiceModel:
    with _LOCK:
        return _session().get_service_model(service)


@cache
def _operation_model(service: str, operation: str) -> OperationModel:
    with _LOCK:
        return _service_model(service).operation_model(operation)


# --- params -------------------------------------------------------------------------------------


def _check_json(value: Any, depth: int) -> None:
    if depth > _MAX_JSON_DEPTH:
        raise _Refused(f"has params nested deeper than {_MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Refused("has a param that is not a finite number (NaN or infinity)")
        return
    if isinstance(value, str):
        if len(value) > _MAX_PARAMS_JSON:
            raise _Refused(f"has params longer than {_MAX_PARAMS_JSON:,} characters of JSON")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Refused("has a param that is not valid Unicode text") from None
        return
    if isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Refused("has params with a key that is not text")
            _check_json(key, depth + 1)
            _check_json(item, depth + 1)
        return
    raise _Refused(f"has a param of type {type(value).__name__}, which is not a JSON value")


def _dummy(shape: Shape, depth: int) -> Any:
    """A value of the type ``shape`` expects, long enough for its ``min``."""
    kind = shape.type_name
    low = shape.metadata.get("min", 0) if isinstance(shape.metadata.get("min", 0), int) else 0
    if kind == "string":
        return "x" * max(1, low)
    if kind in ("integer", "long"):
        return max(1, low)
    if kind in ("float", "double"):
        return float(max(1, low))
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return datetime(2000, 1, 1, tzinfo=UTC)
    if kind == "blob":
        return b"x" * max(1, low)
    if kind == "list":
        return [_dummy(shape.member, depth + 1)] * max(1, low)
    if kind == "map":
        return {}
    if kind == "structure":
        if shape.is_document_type or depth >= _MAX_SHAPE_DEPTH:
            return {}
        members = shape.members
        if shape.is_tagged_union:
            first = next(iter(members), None)
            return {first: _dummy(members[first], depth + 1)} if first else {}
        return {
            name: _dummy(members[name], depth + 1)
            for name in shape.required_members
            if name in members
        }
    return "x"


def _validation_message(exc: ParamValidationError) -> str:
    report = str(exc.kwargs.get("report", exc)).strip()
    lines = [line.strip() for line in report.splitlines() if line.strip()]
    return _short("; ".join(lines), 400, quote=False)


# --- messages -------------------------------------------------------------------------------


def _allow_set(allowed: Any) -> frozenset[tuple[str, str]] | None:
    if allowed is None:
        return None
    try:
        return frozenset((str(s), str(o)) for s, o in allowed)
    except (TypeError, ValueError):
        raise _Refused(
            "was checked against an allow-list that is not (service, operation) pairs"
        ) from None


def _suggest(word: str, choices: Collection[str]) -> str:
    if not isinstance(word, str) or not word or len(word) > _MAX_NAME:
        return ""
    close = get_close_matches(word, list(choices), n=3)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[w] for w in get_close_matches(word.lower(), list(lowered), n=3)]
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _fields(read: Any) -> tuple[str, str, str]:
    values = getattr(read, "__dict__", {}) if isinstance(read, Read) else {}
    return tuple(
        _short(values.get(k, ""), 80, quote=False)  # type: ignore[return-value]
        for k in ("service", "operation", "region")
    )


def _short(value: Any, limit: int = 80, *, quote: bool = True) -> str:
    """A value as it may appear in a message or log: printable, bounded."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    text = text[: limit * 4]
    text = "".join(
        c
        if c.isprintable()
        else f"\\x{ord(c):02x}"
        if ord(c) < 256
        else f"\\u{ord(c):04x}"
        if ord(c) < 65536
        else c
        for c in text
    )
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"'{text}'" if quote else text
