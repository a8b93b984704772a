"""Run an ``aws___run_script`` script for a verified caller, as the AWS MCP Server's sandbox does.

The real server runs the script's Python in a server-side sandbox with no file system and no
network; AWS is reached only through ``await call_boto3(service_name=..., operation_name=...,
region_name=..., params=...)``, as the credentials that signed the MCP request; top-level
``await`` works and the value of the script's last expression is returned. This module does
the same for the local stand-in, against the AWS endpoint it was given (moto).

What a script may use, and why (a script that passes here should pass for real, so what the
real sandbox lacks is refused *before anything runs*, by looking at the parsed code):

* ``import`` of these standard modules only (``ALLOWED_MODULES``): asyncio, json, datetime,
  re, math, itertools, functools, collections, operator, string, decimal. Each arrives as a
  fresh module object holding only its vetted public names: nothing that opens sockets,
  starts processes or threads, reaches an event loop, or reads attributes by name
  (``operator.attrgetter``, ``string.Formatter``, ``functools.update_wrapper`` are absent).
* the builtins in ``SAFE_BUILTINS`` (len, range, list, dict, sorted, print, ..., and the common
  exception classes). ``print`` is captured (logged at DEBUG), never written to the server's
  stdout. open, exec, eval, compile, __import__, globals, locals, vars, getattr, setattr,
  delattr, input, breakpoint, help, memoryview, type, object, super and the rest are absent
  and refused when the script uses them without defining them itself.
* no name, attribute, argument or keyword starting with an underscore (the bare ``_`` is
  fine): that closes ``().__class__.__subclasses__()`` and every other dunder walk. Attributes
  that lead to frames, code or event loops (``gi_frame``, ``cr_frame``, ``f_globals``,
  ``f_back``, ``tb_frame``, ``co_code``, ``get_loop``, ``get_stack``, ``run_in_executor``, ...)
  are refused too, and so are ``class`` statements and assigning or deleting attributes (no
  script can patch a shared class or module for the next one).

A refused script answers ``status: "error"`` with ``error: "ScriptNotAllowed: line N: ..."``
naming what is not allowed, and no AWS call is made.

``call_boto3`` runs the botocore call in a worker thread, signed with the caller's own access
key, secret and session token. Clients are cached per service and region in a bounded LRU and
shared by all callers: each call binds its caller's credentials to the worker thread for the
time of the call, which is when botocore signs (creating a client per caller would cost 8-25
ms per account, service and region). Operation names are the PascalCase API names
(``DescribeInstances``); an unknown service or operation raises ``UnknownOperation`` (a
``ValueError``); keyword arguments only, as the real one. An AWS error raises botocore's own
``ClientError``:
``str(exc)`` is "An error occurred (Code) when calling the Op operation: message" and
``exc.response["Error"]`` holds ``Code`` and ``Message``. Every call that reached botocore is
recorded in ``api_calls`` as ``{"service", "operation", "region", "status": "success" |
"error", "error_code"}``.

Each script runs in a thread of its own with an event loop of its own, so a script that
spins cannot stall the server, and the loop a script could reach is only its own. A script
that outlives the time limit is cancelled and then interrupted with an asynchronous
exception; a long computation inside one C call (``sum(range(10**12))``) cannot be
interrupted before it returns, and memory is not limited: the real sandbox isolates
processes, this stand-in does not. Format strings built at run time can still *stringify*
attributes of the objects handed to them (``"{0.x}".format(obj)``); literal ones that walk
underscored or frame attributes are refused.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import ctypes
import datetime
import difflib
import functools
import inspect
import logging
import re
import string
import threading
import time
import types
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
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
from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
DEFAULT_TIMEOUT_S = 300.0
MAX_CODE_CHARS = 200_000
MAX_REPORTED_VIOLATIONS = 5
# The script's last expression is assigned to this name; scripts cannot name it (underscore).
RESULT_NAME = "__opsagent_return_value__"
REFUSED = "ScriptNotAllowed"

# ----- what a script may use -----

_PUBLIC = None  # every public, non-module member, minus the module's refused names

# module -> the members it offers (_PUBLIC: all public ones) and the members it never offers.
_MODULE_RULES: dict[str, tuple[frozenset[str] | None, frozenset[str]]] = {
    "asyncio": (
        frozenset(
            {
                "gather",
                "sleep",
                "wait",
                "wait_for",
                "as_completed",
                "shield",
                "timeout",
                "create_task",
                "TaskGroup",
                "Semaphore",
                "BoundedSemaphore",
                "Lock",
                "Event",
                "Condition",
                "Queue",
                "LifoQueue",
                "PriorityQueue",
                "QueueEmpty",
                "QueueFull",
                "TimeoutError",
                "CancelledError",
                "InvalidStateError",
                "iscoroutine",
                "FIRST_COMPLETED",
                "FIRST_EXCEPTION",
                "ALL_COMPLETED",
            }
        ),
        frozenset(),
    ),
    "json": (_PUBLIC, frozenset({"load", "dump"})),  # file objects only
    "datetime": (_PUBLIC, frozenset({"datetime_CAPI"})),
    "re": (_PUBLIC, frozenset()),
    "math": (_PUBLIC, frozenset()),
    "itertools": (_PUBLIC, frozenset()),
    # update_wrapper/wraps copy attributes by name; total_ordering and cached_property need
    # classes, which scripts cannot define.
    "functools": (
        _PUBLIC,
        frozenset(
            {
                "update_wrapper",
                "wraps",
                "WRAPPER_ASSIGNMENTS",
                "WRAPPER_UPDATES",
                "total_ordering",
                "cached_property",
                "singledispatchmethod",
                "partialmethod",
                "GenericAlias",
                "RLock",
                "get_cache_token",
            }
        ),
    ),
    "collections": (_PUBLIC, frozenset()),
    # attrgetter/methodcaller read attributes by name (a getattr in disguise).
    "operator": (_PUBLIC, frozenset({"attrgetter", "methodcaller"})),
    # Formatter().get_field walks attributes by name; the constants and Template are safe.
    "string": (
        frozenset(
            {
                "ascii_letters",
                "ascii_lowercase",
                "ascii_uppercase",
                "digits",
                "hexdigits",
                "octdigits",
                "punctuation",
                "printable",
                "whitespace",
                "capwords",
                "Template",
            }
        ),
        frozenset(),
    ),
    # The default contexts are process-wide: a script must not change them for everyone.
    "decimal": (_PUBLIC, frozenset({"DefaultContext", "BasicContext", "ExtendedContext"})),
}
ALLOWED_MODULES = tuple(sorted(_MODULE_RULES))

# Absent from the sandbox's builtins, and named in the refusal when a script calls them.
REFUSED_BUILTINS = frozenset(
    {
        "open",
        "exec",
        "eval",
        "compile",
        "__import__",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "input",
        "breakpoint",
        "help",
        "memoryview",
    }
)
_SAFE_BUILTIN_NAMES = (
    "abs",
    "aiter",
    "all",
    "anext",
    "any",
    "ascii",
    "bin",
    "bool",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "complex",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "format",
    "frozenset",
    "hash",
    "hex",
    "id",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "oct",
    "ord",
    "pow",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
    "None",
    "True",
    "False",
    "Ellipsis",
    "NotImplemented",
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "Exception",
    "ExceptionGroup",
    "ImportError",
    "IndexError",
    "KeyError",
    "LookupError",
    "ModuleNotFoundError",
    "NameError",
    "NotImplementedError",
    "OverflowError",
    "RecursionError",
    "RuntimeError",
    "StopAsyncIteration",
    "StopIteration",
    "TimeoutError",
    "TypeError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeError",
    "ValueError",
    "ZeroDivisionError",
)
SAFE_BUILTINS: dict[str, Any] = {name: getattr(builtins, name) for name in _SAFE_BUILTIN_NAMES}
SAFE_BUILTIN_NAMES = frozenset((*SAFE_BUILTINS, "print"))

# Attributes that lead to frames, code objects or event loops (and from there to everything).
_REFUSED_ATTRIBUTE_RE = re.compile(r"^(f|gi|cr|ag|tb|co)_")
REFUSED_ATTRIBUTES = frozenset(
    {
        "get_loop",
        "get_event_loop",
        "get_running_loop",
        "new_event_loop",
        "set_event_loop",
        "run_in_executor",
        "to_thread",
        "get_coro",
        "get_stack",
        "print_stack",
        "open_connection",
        "start_server",
        "create_connection",
        "create_server",
        "create_subprocess_exec",
        "create_subprocess_shell",
        "subprocess_exec",
        "subprocess_shell",
        "attrgetter",
        "methodcaller",
        "Formatter",
        "update_wrapper",
        "wraps",
        "format_field",
        "get_field",
        "vformat",
    }
)


class ScriptRefused(Exception):
    """The script uses something the sandbox does not offer; nothing of it has run."""


class ScriptTimeout(BaseException):
    """Raised inside a script thread that outlived its time limit (not catchable as Exception)."""


class UnknownOperation(ValueError):
    """call_boto3 was given a service or operation botocore does not know."""


# ----- checking and preparing the code -----


def _attribute_refusal(attr: str) -> str | None:
    if attr.startswith("_"):
        return f"attribute '{attr}' (names starting with an underscore are not allowed)"
    if attr in REFUSED_ATTRIBUTES or _REFUSED_ATTRIBUTE_RE.match(attr):
        return f"attribute '{attr}' is not allowed"
    return None


def _module_members(name: str) -> frozenset[str]:
    offered, refused = _MODULE_RULES[name]
    if offered is None:
        module = __import__(name)
        offered = frozenset(
            member
            for member in dir(module)
            if not member.startswith("_")
            and not isinstance(getattr(module, member), types.ModuleType)
        )
    return frozenset(m for m in offered if m not in refused and _attribute_refusal(m) is None)


MODULE_MEMBERS: dict[str, frozenset[str]] = {name: _module_members(name) for name in _MODULE_RULES}


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name the script binds somewhere (assignment, def, argument, import, loop...)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return bound


def _format_fields(text: str) -> Iterator[str]:
    try:
        for _, field_name, spec, _ in string.Formatter().parse(text):
            if field_name:
                yield field_name
            if spec:
                yield from _format_fields(spec)
    except ValueError:
        return


class _Checker(ast.NodeVisitor):
    def __init__(self, tree: ast.Module) -> None:
        self.problems: list[str] = []
        self.bound = _bound_names(tree)
        self.module_aliases: dict[str, str] = {}

    def refuse(self, node: ast.AST, what: str) -> None:
        self.problems.append(f"line {getattr(node, 'lineno', '?')}: {what}")

    def check_name(self, node: ast.AST, name: str | None, kind: str) -> None:
        if name and name.startswith("_") and name != "_":
            self.refuse(
                node, f"{kind} '{name}' (names starting with an underscore are not allowed)"
            )

    # imports

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in _MODULE_RULES:
                self.refuse(
                    node,
                    f"import of module '{alias.name}' is not allowed "
                    f"(allowed: {', '.join(ALLOWED_MODULES)})",
                )
            else:
                self.module_aliases[alias.asname or alias.name] = alias.name
            self.check_name(node, alias.asname, "name")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or module not in _MODULE_RULES:
            self.refuse(
                node,
                f"import from module '{'.' * node.level}{module}' is not "
                f"allowed (allowed: {', '.join(ALLOWED_MODULES)})",
            )
            return
        for alias in node.names:
            if alias.name == "*":
                self.refuse(node, f"'from {module} import *' is not allowed; name what you use")
            elif alias.name not in MODULE_MEMBERS[module]:
                self.refuse(node, f"'{module}.{alias.name}' is not available in the sandbox")
            self.check_name(node, alias.asname, "name")

    # names and attributes

    def visit_Name(self, node: ast.Name) -> None:
        self.check_name(node, node.id, "name")
        if (
            isinstance(node.ctx, ast.Load)
            and node.id not in self.bound
            and node.id not in SAFE_BUILTIN_NAMES
            and hasattr(builtins, node.id)
            and not node.id.startswith("_")
        ):
            if node.id in REFUSED_BUILTINS:
                self.refuse(
                    node,
                    f"'{node.id}' is not allowed (no files, network, dynamic "
                    "code or introspection in the sandbox)",
                )
            else:
                self.refuse(node, f"builtin '{node.id}' is not available in the sandbox")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        why = _attribute_refusal(node.attr)
        if why:
            self.refuse(node, why)
        elif not isinstance(node.ctx, ast.Load):
            self.refuse(node, f"assigning or deleting attributes ('.{node.attr}') is not allowed")
        elif isinstance(node.value, ast.Name) and node.value.id in self.module_aliases:
            module = self.module_aliases[node.value.id]
            if node.attr not in MODULE_MEMBERS[module]:
                self.refuse(node, f"'{module}.{node.attr}' is not available in the sandbox")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        # "{0.gi_frame.f_back}".format(gen) would read attributes by name, as text.
        if isinstance(node.value, str) and "{" in node.value:
            for field_name in _format_fields(node.value):
                for part in re.split(r"[.\[\]]", field_name)[1:]:
                    if part and (part.startswith("_") or _attribute_refusal(part)):
                        self.refuse(node, f"format field '{{{field_name}}}' is not allowed")
                        break

    # definitions

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.refuse(node, "class definitions are not allowed; use dicts and functions")

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.check_name(node, node.name, "function")
        self.generic_visit(node)

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_arg(self, node: ast.arg) -> None:
        self.check_name(node, node.arg, "argument")
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        self.check_name(node, node.arg, "keyword")
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self.check_name(node, node.name, "name")
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            self.check_name(node, name, "name")

    visit_Nonlocal = visit_Global  # type: ignore[assignment]

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self.check_name(node, node.name, "name")
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        self.check_name(node, node.name, "name")

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self.check_name(node, node.rest, "name")
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        # case X(attr=...) reads attributes by name.
        for attr in node.kwd_attrs:
            why = _attribute_refusal(attr)
            if why:
                self.refuse(node, why)
        self.generic_visit(node)


def prepare(code: str) -> types.CodeType:
    """Parse, check and compile a script; raise ScriptRefused or SyntaxError.

    The last statement, when it is an expression, becomes an assignment to RESULT_NAME: its
    value is the script's return value. The same script sent again (the agent sends one
    identical script to every account of a question) is checked and compiled once: code
    objects are immutable and every run gets fresh globals; a refusal is not cached.
    """
    if not isinstance(code, str):
        raise ScriptRefused("code must be a string")
    return _prepared(code)


@functools.lru_cache(maxsize=32)
def _prepared(code: str) -> types.CodeType:
    if len(code) > MAX_CODE_CHARS:
        raise ScriptRefused(f"the script is longer than {MAX_CODE_CHARS} characters")
    tree = ast.parse(code, filename="<script>", mode="exec")
    checker = _Checker(tree)
    checker.visit(tree)
    if checker.problems:
        shown = checker.problems[:MAX_REPORTED_VIOLATIONS]
        more = len(checker.problems) - len(shown)
        raise ScriptRefused("; ".join(shown) + (f"; and {more} more" if more > 0 else ""))
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1]
        assign = ast.Assign(targets=[ast.Name(id=RESULT_NAME, ctx=ast.Store())], value=last.value)
        tree.body[-1] = ast.copy_location(assign, last)
        ast.fix_missing_locations(tree)
    return compile(tree, "<script>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


# ----- the sandbox's globals -----


def _module_proxy(name: str) -> types.ModuleType:
    """A fresh module object with only the vetted members: nothing shared between scripts."""
    real = __import__(name)
    proxy = types.ModuleType(name)
    for member in MODULE_MEMBERS[name]:
        setattr(proxy, member, getattr(real, member))
    return proxy


def _sandbox_globals(call_boto3: Callable[..., Any], output: list[str]) -> dict[str, Any]:
    modules: dict[str, types.ModuleType] = {}

    def sandbox_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> types.ModuleType:
        if level != 0 or name not in _MODULE_RULES:
            raise ImportError(f"import of module '{name}' is not allowed in the sandbox")
        if name not in modules:
            modules[name] = _module_proxy(name)
        return modules[name]

    def sandbox_print(
        *values: Any, sep: str | None = " ", end: str | None = "\n", flush: bool = False
    ) -> None:
        output.append(
            (" " if sep is None else sep).join(str(v) for v in values)
            + ("\n" if end is None else end)
        )

    sandbox_print.__name__ = sandbox_print.__qualname__ = "print"
    sandbox_builtins = dict(SAFE_BUILTINS)
    sandbox_builtins["print"] = sandbox_print
    sandbox_builtins["__import__"] = sandbox_import
    return {
        "__builtins__": sandbox_builtins,
        "__name__": "__main__",
        "call_boto3": call_boto3,
    }


# ----- results -----


def to_jsonable(value: Any, depth: int = 0) -> Any:
    """Script values as JSON: datetimes as ISO strings, anything else non-JSON via str()."""
    if depth > 100:
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {_json_key(k): to_jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v, depth + 1) for v in value]
    return str(value)


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, datetime.datetime | datetime.date | datetime.time):
        return key.isoformat()
    return str(key)


@dataclass
class ScriptOutcome:
    """What one run_script call answers."""

    status: str  # "success" | "error"
    return_value: Any = None
    error: str | None = None
    api_calls: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""  # what the script printed (logged, not answered)
    elapsed_s: float = 0.0

    @property
    def is_error(self) -> bool:
        return self.status != "success"

    def payload(self) -> dict[str, Any]:
        if self.status == "success":
            return {
                "status": "success",
                "return_value": self.return_value,
                "api_calls": self.api_calls,
            }
        return {"status": "error", "error": self.error, "api_calls": self.api_calls}


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


# ----- AWS -----


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


# ----- running -----


class ScriptRunner:
    """Runs scripts for verified callers against one AWS endpoint."""

    def __init__(
        self,
        aws_endpoint: str | None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        latency_ms: float = 0,
        max_clients: int = 256,
        max_workers: int = 32,
    ) -> None:
        self.aws_endpoint = aws_endpoint
        self.timeout_s = timeout_s
        self.latency_ms = latency_ms
        self.clients = BotoClients(
            aws_endpoint, max_clients=max_clients, max_connections=max_workers
        )
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="opsagent-sandbox-boto3")

    async def run(
        self, code: str, creds: CallerCredentials, default_region: str = DEFAULT_REGION
    ) -> ScriptOutcome:
        started = time.perf_counter()
        try:
            compiled = prepare(code)
        except ScriptRefused as refused:
            outcome = ScriptOutcome("error", error=f"{REFUSED}: {refused}")
        except SyntaxError as error:
            outcome = ScriptOutcome(
                "error", error=f"SyntaxError: {error.msg} (line {error.lineno})"
            )
        else:
            outcome = await _Execution(self, compiled, creds, default_region).run(self.timeout_s)
        # The injected latency is the least time an answer takes, work included, as the real
        # server's 13-15 s include running the script: waiting first and working after would
        # make every script of a question do its work at the same moment.
        if self.latency_ms > 0:
            await asyncio.sleep(max(0.0, self.latency_ms / 1000 - (time.perf_counter() - started)))
        outcome.elapsed_s = time.perf_counter() - started
        return outcome

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.clients.close()


class _Execution:
    """One script, in a thread of its own with an event loop of its own."""

    def __init__(
        self,
        runner: ScriptRunner,
        compiled: types.CodeType,
        creds: CallerCredentials,
        default_region: str,
    ) -> None:
        self.runner = runner
        self.compiled = compiled
        self.creds = creds
        self.default_region = default_region
        self.api_calls: list[dict[str, Any]] = []
        self.output: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._thread: threading.Thread | None = None
        self._interrupts = 0

    async def call_boto3(
        self,
        *,
        service_name: str,
        operation_name: str,
        region_name: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not isinstance(service_name, str) or not isinstance(operation_name, str):
            raise TypeError("service_name and operation_name must be strings")
        if region_name is not None and not isinstance(region_name, str):
            raise TypeError("region_name must be a string or None")
        if params is not None and not isinstance(params, dict):
            raise TypeError("params must be a dict or None")
        clients = self.runner.clients
        method = clients.method_name(service_name, operation_name)
        region = region_name or self.default_region
        record: dict[str, Any] = {
            "service": service_name,
            "operation": operation_name,
            "region": region,
            "status": "pending",
            "error_code": None,
        }
        self.api_calls.append(record)
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(
                self.runner._pool,
                functools.partial(
                    clients.call, self.creds, service_name, region, method, dict(params or {})
                ),
            )
        except ClientError as error:
            record["status"] = "error"
            record["error_code"] = error.response.get("Error", {}).get("Code")
            raise
        except BaseException:
            record["status"] = "error"
            raise
        record["status"] = "success"
        return response

    async def _main(self) -> Any:
        async def call_boto3(
            *,
            service_name: str,
            operation_name: str,
            region_name: str | None = None,
            params: dict[str, Any] | None = None,
        ) -> dict[str, Any]:
            return await self.call_boto3(
                service_name=service_name,
                operation_name=operation_name,
                region_name=region_name,
                params=params,
            )

        namespace = _sandbox_globals(call_boto3, self.output)
        # The code was checked by prepare(); it runs with the sandbox's builtins only.
        result = eval(self.compiled, namespace)
        if inspect.iscoroutine(result):
            await result
        return namespace.get(RESULT_NAME)

    def _thread_main(self, done: Callable[[ScriptOutcome], None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        outcome: ScriptOutcome
        try:
            self._task = loop.create_task(self._main())
            value = loop.run_until_complete(self._task)
            outcome = ScriptOutcome("success", return_value=to_jsonable(value))
        except BaseException as error:  # the script's failure is its answer
            outcome = ScriptOutcome("error", error=_error_text(error))
        try:
            _cancel_leftovers(loop)
        except BaseException:  # a late interrupt must not lose the outcome
            log.debug("script loop cleanup interrupted", exc_info=True)
        finally:
            loop.close()
        outcome.api_calls = self._finished_calls()
        outcome.output = "".join(self.output)
        done(outcome)

    def _finished_calls(self) -> list[dict[str, Any]]:
        calls = [dict(call) for call in self.api_calls]
        for call in calls:
            if call["status"] == "pending":  # still running when the script ended
                call["status"] = "error"
        return calls

    async def run(self, timeout_s: float) -> ScriptOutcome:
        server_loop = asyncio.get_running_loop()
        finished: asyncio.Future[ScriptOutcome] = server_loop.create_future()

        def done(outcome: ScriptOutcome) -> None:
            def settle() -> None:
                if not finished.done():
                    finished.set_result(outcome)

            try:
                server_loop.call_soon_threadsafe(settle)
            except RuntimeError:  # the server loop is gone
                pass

        self._thread = threading.Thread(
            target=self._thread_main, args=(done,), name="opsagent-sandbox-script", daemon=True
        )
        self._thread.start()
        try:
            return await asyncio.wait_for(asyncio.shield(finished), timeout_s)
        except TimeoutError:
            self.abort()
            return ScriptOutcome(
                "error",
                error=f"TimeoutError: the script did not finish within {timeout_s:g} s",
                api_calls=self._finished_calls(),
            )
        except BaseException:  # the MCP request was cancelled: so is the script
            self.abort()
            raise

    def abort(self) -> None:
        """Cancel the script's task; interrupt its thread if it does not stop by itself."""
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop is already closed: the script ended
                return
        timer = threading.Timer(1.0, self._interrupt)
        timer.daemon = True
        timer.start()

    def _interrupt(self) -> None:
        thread = self._thread
        if thread is None or not thread.is_alive() or self._interrupts >= 20:
            return
        self._interrupts += 1
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident or 0), ctypes.py_object(ScriptTimeout)
        )
        timer = threading.Timer(0.5, self._interrupt)
        timer.daemon = True
        timer.start()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Tasks the script started and did not await: cancelled, as the script is over."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
