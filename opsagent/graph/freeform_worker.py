"""The freeform worker: a bounded tool-calling loop over one account's MCP tools.

For a ``Plan.freeform`` task (a read-only question no ResourceQuery can express) the model
works in one account with that account's tools from ``AccountSessions.tools``: ``aws_read``,
one structured read (service, operation, region, params), and the AWS MCP Server's
documentation and region tools. Its last message is the account's note in the answer.

Safety does not rest on the model or on this loop: a model never writes code and never sees
``aws___run_script``; each ``aws_read`` call is a ``Read`` value that passes the read-only
guard (writes, and reads whose answer carries secrets, are refused) and goes out through
the same fixed script template as the agent's own reads. This loop makes sure a refusal goes back
to the model as an error it can read (and the loop goes on or ends) instead of crashing the
account, and that the model gets a fixed number of steps.

The loop is a small LangGraph graph (model node, ``ToolNode``) rather than
``langgraph.prebuilt.create_react_agent``, which is deprecated since LangGraph 1.0 in favour
of ``langchain.agents.create_agent`` from the ``langchain`` package we do not depend on; the
graph is the same ReAct loop, and ending it at the step bound is ours to say.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool, ToolException
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolInvocationError

from opsagent.access import AwsCommandError, ReadOnlyViolation
from opsagent.registry import Account

# (account, user) -> the account's tools, each already behind the read-only guard.
ToolsFor = Callable[[Account, str], Awaitable[Sequence[BaseTool]] | Sequence[BaseTool]]

DEFAULT_MAX_STEPS = 8
# A describe call can return megabytes; the model needs the gist, not the bill.
MAX_TOOL_CHARS = 20_000

SYSTEM = """\
You are a read-only AWS operations assistant working in one AWS account:
{name} ({id}), alias {alias}, environment {environment}, regions {regions}.
Use the aws_read tool for read-only AWS API calls: service is the boto3 service name (ec2,
rds, lambda…), operation the PascalCase API name (DescribeInstances, ListFunctions…), an
explicit region, and params as boto3 takes them. You can never change anything: calls that
would, or that would reveal secrets, are refused and must not be retried or worked around.
Use as few calls as you can (at most {max_steps} steps), then answer the task in a few plain
sentences with the numbers and names you found, for this account only. If a call fails,
say what you could not find out."""


class _LoopState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    steps: int


def tool_error_message(exc: Exception) -> str:
    """What the model reads when a tool call fails; errors it cannot act on are re-raised.

    A read-only refusal or an AWS error (including one read being denied) goes back to the
    model, which can pick another read or conclude. Failing to reach the account
    at all (AssumeRole denied, timeout, unreachable) is raised: it is the account's status, and
    the account worker records it as such.
    """
    if isinstance(exc, ReadOnlyViolation):
        return f"REFUSED: {exc}. Only read-only calls are allowed; do not retry it."
    if isinstance(exc, AwsCommandError):
        return f"ERROR from AWS: {exc}"
    if isinstance(exc, ToolInvocationError | ToolException):
        return f"ERROR: {exc}"
    raise exc


def _clip(messages: list[AnyMessage]) -> list[AnyMessage]:
    clipped: list[AnyMessage] = []
    for message in messages:
        if isinstance(message, ToolMessage) and len(str(message.content)) > MAX_TOOL_CHARS:
            text = str(message.content)[:MAX_TOOL_CHARS] + "\n[output truncated]"
            message = message.model_copy(update={"content": text})
        clipped.append(message)
    return clipped


def build_loop(model: BaseChatModel, tools: Sequence[BaseTool], *, max_steps: int):
    """The ReAct loop: model → tools → model … until the model answers or max_steps."""
    bound = model.bind_tools(list(tools)) if tools else model

    async def agent(state: _LoopState) -> dict:
        reply = await bound.ainvoke(_clip(state["messages"]))
        return {"messages": [reply], "steps": state.get("steps", 0) + 1}

    def next_step(state: _LoopState) -> str:
        last = state["messages"][-1]
        # At the bound, pending tool calls are dropped: nothing runs past max_steps.
        if isinstance(last, AIMessage) and last.tool_calls and state["steps"] < max_steps:
            return "tools"
        return END

    graph = StateGraph(_LoopState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(list(tools), handle_tool_errors=tool_error_message))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", next_step, ["tools", END])
    graph.add_edge("tools", "agent")
    return graph.compile(name="freeform_worker")


def _conclusion(messages: list[AnyMessage], max_steps: int) -> str:
    last = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    text = last.text.strip() if last is not None else ""
    if last is not None and last.tool_calls:
        stopped = f"(stopped after {max_steps} steps without a final answer)"
        return f"{text} {stopped}" if text else stopped
    return text or "(the model gave no answer)"


class ToolLoopWorker:
    """Context.freeform_worker: (account, user, task) -> the model's conclusion."""

    def __init__(
        self, model: BaseChatModel, tools_for: ToolsFor, *, max_steps: int = DEFAULT_MAX_STEPS
    ):
        self._model = model
        self._tools_for = tools_for
        self._max_steps = max_steps

    async def __call__(self, account: Account, user: str, task: str) -> str:
        tools = self._tools_for(account, user)
        if inspect.isawaitable(tools):
            tools = await tools
        loop = build_loop(self._model, tools, max_steps=self._max_steps)
        system = SYSTEM.format(
            name=account.name,
            id=account.id,
            alias=account.alias,
            environment=account.environment,
            regions=", ".join(account.regions),
            max_steps=self._max_steps,
        )
        start = {"messages": [SystemMessage(system), HumanMessage(task)], "steps": 0}
        try:
            # The step count ends the loop; the recursion limit only backs it up.
            state = await loop.ainvoke(start, {"recursion_limit": 2 * self._max_steps + 3})
        except GraphRecursionError:
            return f"(stopped after {self._max_steps} steps without a final answer)"
        return _conclusion(state["messages"], self._max_steps)


__all__ = ["ToolLoopWorker", "build_loop", "tool_error_message"]
