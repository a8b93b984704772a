"""The `opsagent` command: ask questions, run the demo, serve, and run sandbox pieces alone.

Exit codes: 0 answered; 1 configuration or runtime problem; 2 a question it cannot answer
(unparsable, unknown account, not text); 3 a request to change something (the agent is
read-only); 4 accounts the caller may not see; 5 no account could be queried (each one was
denied, failed or timed out), so there is no answer.

Everything printed that comes from outside, resource names, tags, error messages, the
question itself, is text: ``TextConsole`` is the one place that turns strings into output,
and it reads no markup, no emoji codes and no control characters from them.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from opsagent.graph.models import Answer
from opsagent.registry import RegistryError
from opsagent.service.questions import question_problem
from opsagent.service.registry_cli import registry_app
from opsagent.service.settings import Settings

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Read-only multi-account AWS operations agent."
)
sandbox_app = typer.Typer(no_args_is_help=True, help="Run pieces of the local sandbox alone.")
app.add_typer(sandbox_app, name="sandbox")

# C0 and C1 control characters but tab and newline, and lone surrogates (which no terminal
# encoding can write).
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    return "\ufffd" if "\ud800" <= char <= "\udfff" else f"\\x{ord(char):02x}"


class TextConsole(Console):
    """A console on which every string is text, whoever wrote it.

    rich reads markup (``[link=...]``, ``[/x]`` which raises MarkupError) and emoji codes
    in every string it prints, table cells and titles included, and passes escape sequences
    through to the terminal. All of them go through ``render_str``, so this is where a
    string becomes plain text with its control characters shown as ``\\x1b``. Our own
    styling is given as ``style=`` or as ``Text``, never as markup.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:  # type: ignore[override]
        kwargs.update(markup=False, emoji=False)
        return super().render_str(_UNPRINTABLE.sub(_visible, text), **kwargs)


out = TextConsole()
err = TextConsole(stderr=True)

EXIT_FOR_REFUSAL = {"unsupported": 2, "unknown_account": 2, "read_only": 3, "forbidden": 4}
EXIT_CONFIGURATION = 1
EXIT_CANNOT_ANSWER = 2
EXIT_NOTHING_ANSWERED = 5


def _error(message: str) -> None:
    """One line on stderr, however long: "error: <what is wrong and where>"."""
    err.print(Text("error:", style="red"), message, soft_wrap=True)


def _settings_problem(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        field = ".".join(str(p) for p in error.get("loc", ()))
        if not field:  # a check across settings: its message names them (and no values)
            problems.append(message)
            continue
        name = f"OPSAGENT_{field.upper()}"
        # The value helps, but never a secret's.
        shown = "input" in error and "secret" not in field
        problems.append(
            f"{name}={error.get('input')!r}: {message}" if shown else f"{name}: {message}"
        )
    return "invalid settings: " + "; ".join(problems)


class Via(StrEnum):
    direct = "direct"
    gateway = "gateway"


DEMO_QUESTIONS = [
    "List all EC2 instances in the production account",
    "Show me S3 buckets across all accounts",
    "What Lambda functions exist in staging?",
    "Describe EKS clusters in account 222222222222",
    "How many RDS instances are running in each account?",
]


def _settings(registry: Path | None, mcp_endpoint: str | None, via: str | None = None) -> Settings:
    overrides: dict[str, Any] = {}
    if registry is not None:
        overrides["registry"] = registry
    if mcp_endpoint is not None:
        overrides["mcp_endpoint"] = mcp_endpoint
    if via is not None:
        overrides["via"] = via
    return _settings_from(overrides)


VIA_HELP = (
    "How accounts are reached: direct (the agent's own SigV4 session to the AWS MCP Server "
    "per account) or gateway (MCP with a bearer token to an AgentCore Gateway whose target is "
    "the bridge Lambda: OPSAGENT_GATEWAY_URL and OPSAGENT_GATEWAY_TOKEN; on the embedded "
    "sandbox a local Gateway stand-in). Default: OPSAGENT_VIA, else direct."
)


def _settings_from(overrides: dict[str, Any]) -> Settings:
    """Settings from the environment and these values; a bad one is one line, exit 1."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        _error(_settings_problem(exc))
        raise typer.Exit(EXIT_CONFIGURATION) from None


def render_answer(answer: Answer, console: Console = out) -> None:
    console.print(answer.text)
    if not answer.resources:
        return
    rows = answer.resources

    def tags(row) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(row.tags.items()) if k != "Name")

    # Columns that would be empty or repeat another one are left out to keep tables narrow.
    columns: list[tuple[str, Any]] = [
        ("Account", lambda r: r.account_alias),
        ("Region", lambda r: r.region),
    ]
    if len({r.resource_type for r in rows}) > 1:
        columns.append(("Type", lambda r: r.resource_type))
    columns.append(("ID", lambda r: r.id))
    if any(r.name and r.name != r.id for r in rows):
        columns.append(("Name", lambda r: r.name or ""))
    if any(r.state for r in rows):
        columns.append(("State", lambda r: r.state or ""))
    if any(tags(r) for r in rows):
        columns.append(("Tags", tags))
    # The attributes the question asked about (runtime, size, launch time...), a column each.
    asked = list(dict.fromkeys(key for r in rows for key in answer.shown_details(r)))
    for key in asked:
        columns.append((_column_title(rows, key), _detail(answer, key)))

    if answer.described_types:
        _render_details(rows, console)
        return
    table = Table()
    for title, _ in columns:
        table.add_column(title, overflow="fold")
    for row in rows:
        table.add_row(*(value(row) for _, value in columns))
    console.print(table)


def _column_title(rows: list, key: str) -> str:
    from opsagent.graph.catalogue import CATALOGUE  # the catalogue loads late

    declared = CATALOGUE.get(rows[0].resource_type) if rows else None
    attribute = declared.attribute(key) if declared else None
    label = attribute.label if attribute else key.replace("_", " ")
    unit = f" ({attribute.unit})" if attribute and attribute.unit else ""
    return label[0].upper() + label[1:] + unit


def _detail(answer: Answer, key: str) -> Any:
    def value(row) -> str:
        found = answer.shown_details(row).get(key)
        if found is None:
            return ""
        if isinstance(found, bool):
            return "yes" if found else "no"
        return str(found)

    return value


def _render_details(rows: list, console: Console) -> None:
    """Describe answers: one field/value block per resource, readable in a narrow terminal."""
    for row in rows:
        block = Table(
            title=f"{row.resource_type} {row.id}",
            title_justify="left",
            show_header=False,
            box=None,
            padding=(0, 2, 0, 0),
        )
        block.add_column(style="dim")
        block.add_column(overflow="fold")
        fields = {
            "account": f"{row.account_alias} ({row.account_id})",
            "region": row.region,
            "name": row.name,
            "state": row.state,
            **{k: v for k, v in row.details.items() if k != "conditions"},
            **{f"tag {k}": v for k, v in sorted(row.tags.items())},
        }
        for field, value in fields.items():
            if value not in (None, "", [], {}):
                block.add_row(
                    field, ", ".join(map(str, value)) if isinstance(value, list) else str(value)
                )
        console.print(block)
        console.print()


def account_finished_line(event: dict) -> str:
    """One account's outcome in words, from its ``account_finished`` event: `ask`'s progress
    line and `chat`'s board both print this."""
    ok, partial = event["status"] == "ok", event["status"] == "ok" and event.get("error")
    mark = "!" if partial else "✓" if ok else "✗"
    detail = (
        f"{event['status']}: {event['error']}"
        if not ok
        else (
            f"{event['count']} found, in part: {event['error']}"
            if partial
            else f"{event['count']} found"
        )
    )
    return f"{mark} {event['alias']} ({event['account_id']}) {detail} in {event['elapsed_ms']} ms"


def _progress(event: dict, console: Console = err) -> None:
    kind = event.get("event")
    if kind == "plan":
        summary = event["plan"].get("summary") or ""
        console.print(f"plan: {summary}", style="dim")
    elif kind == "account_started":
        console.print(f"… {event['alias']} ({event['account_id']})", style="dim")
    elif kind == "account_finished":
        console.print(account_finished_line(event), style="dim")


def nothing_answered(answer: Answer) -> bool:
    """A plan went out and no account answered: denied, failed or timed out, every one."""
    return (
        answer.refusal is None
        and answer.plan is not None
        and not any(r.status == "ok" for r in answer.results)
    )


async def _ask(
    questions: list[str],
    settings: Settings,
    *,
    as_json: bool,
    thread: str | None,
    user: str | None,
    quiet: bool = False,
    fresh: bool = False,
) -> int:
    from opsagent.service import logs
    from opsagent.service.checkpoints import open_checkpointer
    from opsagent.service.runtime import open_agent

    logs.configure(settings.audit_log, "cli")
    exit_code = 0
    # A named thread is kept where OPSAGENT_CHECKPOINT_URL says, so a later `ask --thread`
    # continues it; an unnamed one cannot be continued and stays in memory.
    store = settings.checkpoint_url if thread else "memory://"
    async with (
        open_checkpointer(store) as checkpointer,
        open_agent(settings, checkpointer=checkpointer) as agent,
    ):
        config = agent.config(thread_id=thread, user=user, fresh=fresh)
        for question in questions:
            answer: Answer | None = None
            async for item in agent.stream(question, config):
                if isinstance(item, Answer):
                    answer = item
                elif not quiet:
                    _progress(item)
            assert answer is not None
            if as_json:
                print(json.dumps(answer.to_json(), default=str))
            else:
                if len(questions) > 1:
                    out.rule(question)
                render_answer(answer)
            if answer.refusal is not None:
                exit_code = max(exit_code, EXIT_FOR_REFUSAL[answer.refusal.kind])
            elif nothing_answered(answer):
                exit_code = max(exit_code, EXIT_NOTHING_ANSWERED)
        stand_in = agent.gateway_stand_in
        if stand_in is not None:  # the sandbox's Gateway: say the answers came through it
            calls = stand_in.invocations
            err.print(
                f"via the AgentCore Gateway stand-in at {stand_in.endpoint}: {len(calls)} "
                f"invocation{'s' if len(calls) != 1 else ''} of the bridge Lambda, at most "
                f"{stand_in.peak_concurrency} at once",
                style="dim",
            )
    return exit_code


def _run(coro) -> int:
    from opsagent.service.runtime import ConfigurationError

    try:
        return asyncio.run(coro)
    except (RegistryError, ConfigurationError) as exc:
        _error(str(exc))
        return EXIT_CONFIGURATION
    except ValidationError as exc:
        if exc.title != "Settings":  # settings read inside the run (the eval's)
            raise
        _error(_settings_problem(exc))
        return EXIT_CONFIGURATION
    except KeyboardInterrupt:
        return 130


def _read_question(question: str) -> str:
    """The question as given, or standard input's for `-`; a question that is not text
    (invalid UTF-8, a lone surrogate, a control character) or is empty ends here, exit 2."""
    if question == "-":
        data = sys.stdin.buffer.read()
        try:
            question = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            _error(
                f"the question on standard input is not UTF-8 text (byte "
                f"0x{data[exc.start]:02x} at offset {exc.start})"
            )
            raise typer.Exit(EXIT_CANNOT_ANSWER) from None
    problem = question_problem(question)
    if problem is not None:
        _error(problem)
        raise typer.Exit(EXIT_CANNOT_ANSWER)
    if not question.strip():
        _error("the question is empty")
        raise typer.Exit(EXIT_CANNOT_ANSWER)
    return question.strip()


@app.command()
def ask(
    questions: Annotated[
        list[str],
        typer.Argument(
            help="A question in plain English, or - to read it from standard input. Several "
            "are asked in order in one conversation: later ones are follow-ups.",
            show_default=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    registry: Annotated[Path | None, typer.Option(help="Account registry JSON file.")] = None,
    mcp_endpoint: Annotated[str | None, typer.Option(help="AWS MCP Server endpoint URL.")] = None,
    thread: Annotated[
        str | None,
        typer.Option(help="Conversation thread id: a later ask with the same id is a follow-up."),
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="Who is asking (names the role session).")
    ] = None,
    via: Annotated[Via | None, typer.Option(help=VIA_HELP, show_default=False)] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Read every account again; by default a follow-up reuses reads younger "
            "than OPSAGENT_DATA_MAX_AGE.",
        ),
    ] = False,
) -> None:
    """Ask a question across the accounts and print the merged answer (several: in order,
    in one conversation).

    Exit codes: 0 answered, 1 configuration error, 2 a question it cannot answer or an
    unknown account, 3 a request to change something, 4 accounts you may not see, 5 no
    account could be queried."""
    if questions.count("-") > 1:
        _error("standard input (-) can give only one of the questions")
        raise typer.Exit(EXIT_CANNOT_ANSWER)
    asked = [_read_question(question) for question in questions]
    settings = _settings(registry, mcp_endpoint, via.value if via is not None else None)
    raise typer.Exit(
        _run(_ask(asked, settings, as_json=as_json, thread=thread, user=user, fresh=fresh))
    )


@app.command()
def chat(
    registry: Annotated[Path | None, typer.Option(help="Account registry JSON file.")] = None,
    mcp_endpoint: Annotated[str | None, typer.Option(help="AWS MCP Server endpoint URL.")] = None,
    thread: Annotated[
        str | None,
        typer.Option(help="Resume this conversation (the id a chat prints at start and exit)."),
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="Who is asking (names the role session).")
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Read every account again for each question; by default a follow-up reuses "
            "reads younger than OPSAGENT_DATA_MAX_AGE.",
        ),
    ] = False,
    via: Annotated[Via | None, typer.Option(help=VIA_HELP, show_default=False)] = None,
) -> None:
    """Talk with the agent: each line is a question in one conversation, so follow-ups work
    ("and in staging?"). /help lists the commands; exit, quit or Ctrl-D leaves.

    The conversation is kept where OPSAGENT_CHECKPOINT_URL says; its thread id is printed at
    start and at exit, for --thread. Exit codes: 0 left, 1 configuration error, 2 a bad
    --thread."""
    from opsagent.service.chat import run_chat

    settings = _settings(registry, mcp_endpoint, via.value if via is not None else None)
    raise typer.Exit(run_chat(settings, thread=thread, user=user, fresh=fresh))


@app.command()
def demo(
    via: Annotated[
        Via | None,
        typer.Option(
            help="direct: the agent's own SigV4 sessions (the default); gateway: agent → a "
            "local AgentCore Gateway stand-in → the bridge Lambda (in-process) → the AWS MCP "
            "Server stand-in → the sandbox's AWS.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Answer the product's five example questions on the embedded sandbox."""
    overrides: dict[str, Any] = {"registry": None, "mcp_endpoint": None, "gateway_url": None}
    if via is not None:
        overrides["via"] = via.value
    settings = _settings_from(overrides)
    raise typer.Exit(
        _run(_ask(DEMO_QUESTIONS, settings, as_json=False, thread=None, user=None, quiet=True))
    )


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to bind (default 127.0.0.1; 0.0.0.0 in the container)."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    registry: Annotated[Path | None, typer.Option(help="Account registry JSON file.")] = None,
    mcp_endpoint: Annotated[str | None, typer.Option(help="AWS MCP Server endpoint URL.")] = None,
) -> None:
    """Serve the HTTP API (AgentCore Runtime contract: POST /invocations, GET /ping)."""
    import uvicorn

    from opsagent.service.http import create_app
    from opsagent.service.logs import log_config

    settings = _settings(registry, mcp_endpoint)
    if settings.registry is not None:
        # Read it here too: a bad file is one line now, not a traceback from the lifespan.
        from opsagent.registry import load_registry

        try:
            load_registry(settings.registry)
        except RegistryError as exc:
            _error(str(exc))
            raise typer.Exit(EXIT_CONFIGURATION) from None
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    problem = settings.exposure_problem()
    if problem:
        _error(problem)
        raise typer.Exit(EXIT_CONFIGURATION)
    # Startup failures (bad registry, unreachable checkpoint database) end the lifespan with
    # the reason logged; uvicorn then exits non-zero.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=log_config(settings.audit_log, "service"),
        timeout_graceful_shutdown=10,
    )


@app.command("eval")
def eval_(
    json_file: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Lowest accepted plan, answer and refusal accuracy (all and held-out); "
            "default 0.9."
        ),
    ] = None,
    questions: Annotated[
        Path | None, typer.Option(help="Question file (default: built in).")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(help="Run only questions whose id contains this (with their whole thread)."),
    ] = None,
) -> None:
    """Score the agent on the canned questions against the embedded sandbox."""
    from opsagent.evals.runner import DEFAULT_THRESHOLD, eval_command
    from opsagent.evals.spec import QuestionFileError

    try:
        # The eval's report is ours and styled with markup: plain rich consoles.
        code = _run(
            eval_command(
                json_file=json_file,
                threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
                questions_file=questions,
                only=only,
                console=Console(),
                progress_console=Console(stderr=True),
            )
        )
    except QuestionFileError as exc:
        _error(str(exc))
        code = 1
    raise typer.Exit(code)


@sandbox_app.command("serve-mcp")
def serve_mcp(
    aws_endpoint: Annotated[str, typer.Option(help="AWS-compatible endpoint to call.")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
    script_latency_ms: Annotated[
        float,
        typer.Option(
            help="Wait this long before running each aws___run_script script, as the "
            "real server takes ~13-15 s (0: no wait)."
        ),
    ] = 0,
) -> None:
    """Run only the local AWS MCP Server stand-in against an endpoint it does not seed."""
    from opsagent.sandbox import serve_mcp as serve

    serve(aws_endpoint, port=port, script_latency_ms=script_latency_ms)


# `opsagent registry discover`: the registry from AWS Organizations (service/registry_cli.py).
app.add_typer(registry_app, name="registry")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
