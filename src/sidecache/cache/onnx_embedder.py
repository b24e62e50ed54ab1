"""The production embedder: a transformer in ONNX, run by onnxruntime, int8.

Why: on a small CPU box the torch model spends most of a single-prompt call in Python and
framework overhead; onnxruntime with int8 weights answers the same prompt several times faster
(figures in ``benchmarks/embedder_speed.py``) and never imports torch at serving time.

Two sources of ONNX files. The default model is shipped in the package, already quantised
(``sidecache.cache.bundled``; built by ``scripts/build_embedder.py``): ``create`` loads it as it
is. A model of your own (``cache.embedder.model_path``, an adapter, or ``quantize = false``) is
exported here at first start, which needs the torch extra: ``torch.onnx.export`` (output
``last_hidden_state``, dynamic batch and sequence axes, opset 17), then
``onnxruntime.quantization.quantize_dynamic`` (int8, per output channel: per-tensor scales lose
too much, mean cosine 0.965 against torch instead of 0.993). Dynamic quantisation computes
activation scales per call, so such a model's vectors move a little with their batch-mates
(the shipped model's static scales do not); its calibration-free recipe is what makes an export
at start possible. Files are written atomically (temporary file, then rename) and named after a
hash of the model folder and its configuration, so later starts reuse them and a different model
gets its own export.

Either way, tokenisation uses the model's fast tokenizer (``tokenizer.json``) with the model's
truncation length and padding to the longest text of a group; pooling is the attention-masked
mean followed by L2 normalisation, exactly as sentence-transformers computes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sidecache.cache.embedder import derived_dir, max_seq_length, require
from sidecache.errors import ConfigError

if TYPE_CHECKING:
    import numpy.typing as npt

    from sidecache.config import EmbedderConfig

__all__ = ["OnnxEmbedder", "create", "export_fp32", "export_onnx"]

log = logging.getLogger(__name__)

EXPORT_VERSION = 1
"""Bump when the export recipe changes so existing files are not reused."""
OPSET = 17
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_CONFIG_FILES = (
    "config.json",
    "modules.json",
    "sentence_bert_config.json",
    "tokenizer.json",
    "1_Pooling/config.json",
)
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _pooling_mode(model_path: Path) -> str:
    """Only mean and CLS pooling are implemented here; anything else is refused at start."""
    try:
        cfg = json.loads((model_path / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return "mean"
    if cfg.get("pooling_mode_mean_tokens"):
        return "mean"
    if cfg.get("pooling_mode_cls_token"):
        return "cls"
    raise ConfigError(
        f"the onnx embedder supports mean or CLS pooling only; {model_path} uses another mode "
        "(use cache.embedder.backend = 'torch')"
    )


def model_key(model_path: Path) -> str:
    """A short hash of where the model is and what it is; names the exported files."""
    h = hashlib.sha256()
    h.update(f"v{EXPORT_VERSION}\0opset{OPSET}\0{model_path.resolve()}\0".encode())
    for name in _CONFIG_FILES:
        f = model_path / name
        if f.is_file():
            h.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
    for name in _WEIGHT_FILES:
        f = model_path / name
        if f.is_file():
            st = f.stat()
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:16]


def _atomic_target(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def export_fp32(model_path: Path, target: Path) -> None:
    """Trace the transformer to ONNX, fp32 (eager attention: a plain graph onnxruntime fuses
    well). Needs torch, transformers and onnx (the torch extra); also used by
    ``scripts/build_embedder.py`` for the shipped model."""
    require("torch", "torch", "onnx")
    require("transformers", "transformers", "onnx")
    require("onnx", "onnx", "onnx")
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager")
    model.eval()
    uses_types = bool(getattr(model.config, "type_vocab_size", 0))
    names = list(_INPUTS if uses_types else _INPUTS[:2])

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return self.inner(**dict(zip(names, args, strict=True))).last_hidden_state

    dummy = torch.ones((2, 8), dtype=torch.long)
    args = tuple(dummy if n != "token_type_ids" else torch.zeros_like(dummy) for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    tmp = _atomic_target(target)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer chatter about shape-dependent branches
            torch.onnx.export(
                LastHiddenState(model),
                args,
                str(tmp),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _quantize(source: Path, target: Path) -> None:
    require("onnxruntime.quantization", "onnxruntime", "onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = _atomic_target(target)
    try:
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def export_onnx(model_path: Path, out_dir: Path, *, quantize: bool = True) -> Path:
    """Return the path of the ONNX file for this model, exporting it first if needed.

    Blocking and slow the first time (seconds); later calls only check that the file exists.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the ONNX directory {out_dir}: {exc.strerror}") from exc
    stem = f"{model_path.name}-{model_key(model_path)}"
    fp32 = out_dir / f"{stem}-fp32.onnx"
    int8 = out_dir / f"{stem}-int8.onnx"
    wanted = int8 if quantize else fp32
    if wanted.is_file():
        return wanted
    t0 = time.perf_counter()
    if not fp32.is_file():
        export_fp32(model_path, fp32)
        log.info("exported %s to ONNX in %.1fs: %s", model_path, time.perf_counter() - t0, fp32)
    if quantize:
        t1 = time.perf_counter()
        _quantize(fp32, int8)
        log.info("quantised ONNX model to int8 in %.1fs: %s", time.perf_counter() - t1, int8)
    return wanted


class OnnxEmbedder:
    """onnxruntime session + fast tokenizer + masked mean pooling + L2 normalisation."""

    def __init__(
        self, onnx_path: Path, model_path: Path, *, threads: int = 0, name: str = ""
    ) -> None:
        require("onnxruntime", "onnxruntime", "onnx")
        require("tokenizers", "tokenizers", "onnx")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tok_file = model_path / "tokenizer.json"
        if not tok_file.is_file():
            raise ConfigError(f"the onnx embedder needs {tok_file} (a fast tokenizer)")
        self._tokenizer: Any = Tokenizer.from_file(str(tok_file))
        self._tokenizer.enable_truncation(max_length=max_seq_length(model_path))
        pad = self._tokenizer.padding or {}
        pad_token = pad.get("pad_token", "[PAD]")
        pad_id = pad.get("pad_id", self._tokenizer.token_to_id(pad_token) or 0)
        # Padding is done here, per group of similar lengths (see ``encode``), never to the
        # fixed length tokenizer.json may say.
        self._tokenizer.no_padding()
        self._pad_id = int(pad_id)
        self._pooling = _pooling_mode(model_path)

        opts = ort.SessionOptions()
        if threads > 0:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: spinning wins ~1 ms per call on an idle
        # box but, measured on 2 shared cores, costs 2x when anything else (the event loop) runs.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session: Any = ort.InferenceSession(
            str(onnx_path), opts, providers=["CPUExecutionProvider"]
        )
        self._inputs = [i.name for i in self._session.get_inputs()]
        self.dim: int = int(self._session.get_outputs()[0].shape[-1])
        self.name: str = name or f"onnx:{onnx_path.stem}"
        self.space: str = model_path.name
        self.path = onnx_path

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Tokenise, run, pool; rows are unit length.

        A batch is run as a few groups of similar token counts rather than padded to its
        longest text: padding is computed like real tokens, and short and long prompts mixed in
        one batch of 32 wasted about a quarter of the model's time (measured: 1.86 ms per
        prompt padded to the longest, 1.44 ms grouped).
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encs = self._tokenizer.encode_batch(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for group in _length_groups([len(e.ids) for e in encs]):
            out[group] = self._run([encs[i] for i in group])
        return out

    def _run(self, encs: list[Any]) -> npt.NDArray[np.float32]:
        """One model call over tokenised texts, padded to the longest of them."""
        width = max(len(e.ids) for e in encs)
        ids = np.full((len(encs), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        types = np.zeros((len(encs), width), dtype=np.int64)
        for row, e in enumerate(encs):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = 1
            types[row, :n] = e.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self._session.run(None, {k: feed[k] for k in self._inputs})[0]
        if self._pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        rows: npt.NDArray[np.float32] = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return rows


_MIN_GROUP = 4
_MAX_PADDING = 1.1


def _length_groups(lengths: list[int]) -> list[list[int]]:
    """Indices grouped by similar length: ascending, a group closes when padding its next
    member would compute more than ``_MAX_PADDING`` times the real tokens (groups of at least
    ``_MIN_GROUP``, since every model call has a fixed cost too)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups: list[list[int]] = []
    group: list[int] = []
    real = 0
    for i in order:
        n = lengths[i]
        if len(group) >= _MIN_GROUP and n * (len(group) + 1) > _MAX_PADDING * (real + n):
            groups.append(group)
            group, real = [], 0
        group.append(i)
        real += n
    if group:
        groups.append(group)
    return groups


def create(cfg: EmbedderConfig, model_path: Path, data_dir: Path) -> OnnxEmbedder:
    """Registry factory (see ``embedder.BACKENDS``): the shipped model as it is, or export once
    (torch extra), then load."""
    from sidecache.cache.bundled import MODEL_FILE, bundled_dir, manifest

    if model_path == bundled_dir():
        name = f"onnx:{manifest().vectors}"
        return OnnxEmbedder(model_path / MODEL_FILE, model_path, threads=cfg.threads, name=name)
    path = export_onnx(model_path, derived_dir(cfg, Path(data_dir)), quantize=cfg.quantize)
    return OnnxEmbedder(path, model_path, threads=cfg.threads)
