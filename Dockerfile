# callwatch: one container, the embedded defaults (Whisper base from PyPI, SQLite under /data).
# Build: docker build -t callwatch .    Run: docker run -p 8000:8000 -v callwatch-data:/data callwatch

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/callwatch
ENV PATH=/opt/callwatch/bin:$PATH
# torch first, so the transformers dependency never picks its own build. From PyPI this is the CUDA build
# (good for a GPU host); for a small CPU-only image pass the index that serves CPU wheels:
#   docker build --build-arg TORCH_INDEX_URL=... .
ARG TORCH_INDEX_URL=""
RUN pip install --no-cache-dir --upgrade pip \
 && pip install --no-cache-dir torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
COPY pyproject.toml README.md ./
COPY service service
COPY models models
COPY pipelines pipelines
COPY clients clients
COPY rules rules
RUN pip install --no-cache-dir .
# Bake the model caches into the image: nothing is built or fetched when a container starts.
ENV CALLWATCH_CACHE_DIR=/opt/callwatch-cache
RUN callwatch setup

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --home /data callwatch && mkdir -p /data && chown callwatch /data
COPY --from=build /opt/callwatch /opt/callwatch
COPY --from=build /opt/callwatch-cache /opt/callwatch-cache
COPY samples /opt/callwatch-samples
ENV PATH=/opt/callwatch/bin:$PATH \
    CALLWATCH_CACHE_DIR=/opt/callwatch-cache \
    CALLWATCH_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
USER callwatch
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"
CMD ["callwatch", "serve", "--host", "0.0.0.0", "--port", "8000"]
