# syntax=docker/dockerfile:1
# Build the wheel in one stage; install it alone in a slim runtime with no build tools.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY adapters adapters
COPY storage storage
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 reviewrelay && mkdir /data && chown reviewrelay /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER reviewrelay
WORKDIR /data
VOLUME ["/data"]
ENV DATABASE_URL=sqlite:////data/reviewrelay.db \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=3000 \
    PYTHONUNBUFFERED=1
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"HTTP_PORT\"]}/healthz', timeout=4)"
ENTRYPOINT ["reviewrelay"]
CMD ["run"]
