# The gateway as a production image: a sidecar beside serverless functions (Cloud Run, Lambda
# containers, a Kubernetes pod) or a shared service. The embedding model ships inside the wheel
# (int8 ONNX run by onnxruntime): no torch, no model hub, nothing downloaded at run time, and the
# port opens at once (the model loads behind /readyz).
#
#   docker build -t sidecache .
#   docker run -p 8080:8080 -e OPENAI_API_KEY=sk-... -v sidecache-data:/data sidecache
#
# Settings come from the environment (README, "Running in a container"); a config file can be
# mounted and named with SIDECACHE_CONFIG. tests/test_image.py runs this file's install line,
# ENV and CMD without a Docker engine.

# -- build: the wheel ---------------------------------------------------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-deps --no-cache-dir --wheel-dir /wheels .

# -- run: the wheel and its dependencies, nothing else -------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
    SIDECACHE_HOST=0.0.0.0 SIDECACHE_DATA_DIR=/data PORT=8080
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --disable-pip-version-check /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin sidecache \
    && mkdir -p /data && chown sidecache /data && chmod 700 /data
USER sidecache
WORKDIR /data
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=2)"]
CMD ["sidecache", "serve"]
