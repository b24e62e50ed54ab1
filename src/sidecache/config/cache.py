"""``[cache]``: the response cache, its embedder, its verifier and its store."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from sidecache.config.base import Base, Positive, Seconds, Unit


class EmbedderConfig(Base, frozen=True):
    """The local sentence embedding model; never downloaded."""

    backend: Literal["onnx", "torch"] = "onnx"
    """``onnx``: with the defaults below, the int8 all-MiniLM-L6-v2 shipped in the package (no
    torch needed); ``torch``: sentence-transformers (needs the ``torch`` extra)."""
    model_path: str = ""
    """A local sentence-transformers folder, exported to ONNX at first start (needs the ``torch``
    extra); empty: the bundled all-MiniLM-L6-v2."""
    adapter: str = "auto"
    """A low-rank adapter merged into the model at start (needs the ``torch`` extra): ``auto``
    (the one shipped in the package, with the bundled model only; none is shipped today),
    ``none``, or the path of an adapter ``.npz``."""
    onnx_dir: str = ""
    """Where files made from the model at start are kept (the ONNX export, the model with its
    adapter merged); empty: ``<data_dir>/onnx``. Several data directories may share one. Unused
    by the shipped model."""
    quantize: bool = True
    """int8: the shipped model (static scales), or dynamic quantisation of a start-time export;
    false: an fp32 export at start (needs the ``torch`` extra)."""
    max_batch: Positive = 16
    """Texts per model call at most. With two workers, 16 beat 32 under 64 clients (semantic
    hits/s 598-704 against 514-581 in back-to-back runs): two half batches run at once."""
    max_wait_ms: Seconds = 2.0
    threads: Annotated[int, Meta(ge=0)] = 1
    """Threads inside one model call; 0: the library's default (every core). One thread
    leaves the other cores to the event loop and lets concurrent requests form larger batches:
    on 2 cores, semantic hits/s with 64 clients rose from about 414 to 496 with it."""
    workers: Positive = 2
    """Embedding worker threads: while one batch is in the model the next one forms and runs
    on another core (the model releases the GIL)."""


class VerifierConfig(Base, frozen=True):
    """The hit verifier: checks that a semantic match really answers the new prompt."""

    enabled: bool = True
    model_path: str = ""
    """Learned parameters; empty: the file shipped in the package."""
    cutoff: Unit | None = None
    """Probability the learned score must reach; None: the cutoff shipped with the model."""


class RedisConfig(Base, frozen=True):
    """The shared backend: entries live in Redis and every replica mirrors the vectors."""

    url: str = "redis://127.0.0.1:6379/0"
    """``redis://``, ``rediss://`` (TLS) or ``unix://``; use ``${ENV}`` for a password."""
    key_prefix: str = "sidecache:"
    """Every key starts with it, so two deployments can share one server."""
    stream_maxlen: Annotated[int, Meta(ge=1000)] = 100_000
    """Approximate length the change stream is trimmed to (a replica further behind resyncs)."""
    timeout_seconds: Annotated[float, Meta(gt=0)] = 2.0
    """Connect and command timeout: a Redis that stops answering turns lookups into misses."""


class CacheConfig(Base, frozen=True):
    enabled: bool = True
    semantic: bool = True
    threshold: Unit = 0.6
    """Cosine a semantic match needs before the hit verifier judges it. Paraphrases that people
    reword, reorder or abbreviate often sit between 0.6 and 0.75 (a third of the hand-written
    ones in ``benchmarks/data/dev_pairs_v2.jsonl``), and the verifier, not the cosine, is what
    refuses hard negatives. Chosen together with the verifier's shipped cutoff by
    ``benchmarks/train_verifier.py``; with the verifier off, use 0.9 or more."""
    ttl_seconds: Seconds = 0.0
    """0: entries never expire."""
    max_entries: Positive = 100_000
    hnsw_min_size: Positive = 10_000
    cache_images: bool = False
    cache_tool_results: bool = False
    sweep_interval_seconds: Seconds = 30.0
    replay_chunk_chars: Positive = 24
    embedder: EmbedderConfig = EmbedderConfig()
    verifier: VerifierConfig = VerifierConfig()
    store: Literal["sqlite", "redis"] = "sqlite"
    """Where entries live: SQLite under ``data_dir`` (one machine) or Redis (many replicas)."""
    redis: RedisConfig = RedisConfig()
