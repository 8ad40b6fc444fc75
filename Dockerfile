# The gateway: `docker build -t ai-gateway .`; docker-compose.yml runs it with Postgres and Redis.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8787 \
    GATEWAY_SPOOL_DIR=/var/lib/gateway/spool \
    DATABASE_URL=sqlite+aiosqlite:////var/lib/gateway/gateway.sqlite3

WORKDIR /app
# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml ./
RUN mkdir -p gateway providers backend \
    && touch gateway/__init__.py providers/__init__.py backend/__init__.py \
    && pip install . \
    && pip uninstall -y ai-gateway \
    && rm -rf build gateway providers backend
# The code runs from /app (the working directory), so migrations/ sits beside the package.
COPY . .
RUN pip install --no-deps . \
    && rm -rf build *.egg-info \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin gateway \
    && mkdir -p /var/lib/gateway/spool \
    && chown -R gateway:gateway /var/lib/gateway

USER gateway
EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEWAY_PORT', '8787'), timeout=2)"
# uvicorn turns SIGTERM into a graceful stop: in-flight streams get GATEWAY_SHUTDOWN_GRACE_S.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "gateway", "serve", "--host", "0.0.0.0"]
