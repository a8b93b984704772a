# syntax=docker/dockerfile:1
# The HTTP service for Amazon Bedrock AgentCore Runtime: POST /invocations and GET /ping on
# 0.0.0.0:8080, as a non-root user. AgentCore runs linux/arm64; the same file builds amd64:
#
#   docker buildx build --platform linux/arm64 -t opsagent .            # for AgentCore
#   docker buildx build --platform linux/arm64,linux/amd64 -t opsagent .
#
# No --platform on FROM: BuildKit already pulls each stage for the target platform, and both
# stages must match it (the venv holds compiled wheels: pydantic-core, psycopg, ormsgpack).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/opsagent
WORKDIR /src
# The package and its pinned-by-pyproject dependencies, nothing from the dev extra.
COPY pyproject.toml README.md ./
COPY opsagent ./opsagent
RUN /opt/opsagent/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/opsagent/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OPSAGENT_HOST=0.0.0.0 \
    OPSAGENT_PORT=8080
COPY --from=build /opt/opsagent /opt/opsagent
RUN useradd --create-home --uid 10001 --user-group opsagent
# Numeric, so runtimes that enforce "non-root" can check it without reading /etc/passwd.
USER 10001:10001
# The default checkpoint file (.opsagent/checkpoints.sqlite) lands in this writable home;
# set OPSAGENT_CHECKPOINT_URL=dynamodb://... for sessions that outlive the microVM.
WORKDIR /home/opsagent
EXPOSE 8080
CMD ["opsagent", "serve"]
