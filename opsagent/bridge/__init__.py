"""The bridge: the Lambda function behind Amazon Bedrock AgentCore Gateway (architecture option 2).

The Gateway authenticates callers and routes MCP tool calls to this Lambda; the Lambda assumes
the member-account roles and calls the AWS MCP Server (SigV4), with the agent's own registry,
access layer (sessions, credentials, read-only guard, script template) and plan execution.

    handler.py   the Lambda entry ``opsagent.bridge.handler.handler(event, context)``: the
                 Gateway's Lambda contract, ``Bridge`` (one event loop and one session pool
                 kept across invocations), the identity decision and its sources
    caller.py    who asks: a verified token's user and groups, or the configured service
                 identity
    args.py      the tools' arguments, validated (``tools.json`` is their published schema)
    tools.py     list_accounts, query_account, query_accounts
    service.py   the wiring: settings -> registry, central identity, sessions, fan-out slots
    settings.py  ``BridgeSettings``: the agent's ``OPSAGENT_*`` settings, bridge defaults

Nothing here is imported by the package itself: ``import opsagent.bridge.handler`` loads what
a cold start needs and no more (no LangGraph, LangChain, FastAPI or moto).
"""
