# CPU image of the gateway. The embedding model ships inside the sidecache package (int8 ONNX,
# run by onnxruntime), so the image needs neither torch nor a model hub at run time.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
# For the torch backend, a model of your own or an adapter: pip install ".[torch]" (pass
# PIP_EXTRA_INDEX_URL, a CPU wheel index for torch, to keep the image small).
RUN pip install .
VOLUME /data
EXPOSE 8080
CMD ["sidecache", "serve", "--host", "0.0.0.0", "--port", "8080"]
