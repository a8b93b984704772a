"""Check a script before anything of it runs: what is refused, and why.

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
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
import string
import types
from collections.abc import Iterator

from opsagent.sandbox.script_globals import (
    _MODULE_RULES,
    ALLOWED_MODULES,
    MODULE_MEMBERS,
    REFUSED_BUILTINS,
    SAFE_BUILTIN_NAMES,
    _attribute_refusal,
)

MAX_CODE_CHARS = 200_000
MAX_REPORTED_VIOLATIONS = 5
# The script's last expression is assigned to this name; scripts cannot name it (underscore).
RESULT_NAME = "__opsagent_return_value__"
REFUSED = "ScriptNotAllowed"


class ScriptRefused(Exception):
    """The script uses something the sandbox does not offer; nothing of it has run."""


# ----- checking and preparing the code -----


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
