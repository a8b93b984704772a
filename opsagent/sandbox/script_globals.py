"""The vetted modules, builtins and attributes a script may use, and the globals it runs with."""

from __future__ import annotations

import builtins
import re
import types
from collections.abc import Callable
from typing import Any

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
