# swx single window: the gateway with its regulators, SQLite by default.
# docker build -t swx . && docker run -p 8000:8000 -e SWX_OPERATOR_TOKEN=change-me swx
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SWX_HOST=0.0.0.0 SWX_PORT=8000 SWX_DATABASE_URL=sqlite+aiosqlite:////data/swx.db \
    SWX_LEDGER_KEY_PATH=/data/ledger.key

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY schemas ./schemas
COPY adapters ./adapters
COPY ledger ./ledger
COPY mock_customs ./mock_customs
COPY kit ./kit
COPY replay ./replay
RUN pip install --no-cache-dir . && useradd --create-home swx && mkdir /data && chown swx /data

USER swx
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz')" || exit 1
CMD ["swx", "serve"]
