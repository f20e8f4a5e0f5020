# Production image: a wheel built in one stage, installed (knowledge baked into the package)
# into a slim runtime that runs as an unprivileged user. Configuration is by environment;
# see SECURITY.md for what production requires.
#   docker build -t cds-mbc-bone .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY cds ./cds
COPY cards ./cards
RUN pip install --no-cache-dir build==1.2.2 \
    && python -m build --wheel --outdir /wheels . \
    && pip wheel --no-cache-dir -c constraints.txt --wheel-dir /wheels /wheels/*.whl

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --home-dir /var/lib/cds --create-home cds
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels cds-mbc-bone \
    && rm -rf /wheels
USER cds
WORKDIR /var/lib/cds
ENV CDS_MODE=production \
    CDS_FEEDBACK_DB=/var/lib/cds/feedback.sqlite3 \
    PYTHONDONTWRITEBYTECODE=1
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health')"
# One worker per core; every shared state is in the database (CDS_DATABASE_URL).
CMD ["cds", "serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
