"""The :class:`Verifier`: rules, features and the learned score behind one ``check`` call."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sidecache.cache.verifier import model_file
from sidecache.cache.verifier.analysis import AnalysisMemo, PromptAnalysis
from sidecache.cache.verifier.features import (
    EMPTY_LEXICAL,
    FEATURE_NAMES,
    Lexical,
    pair_features,
)
from sidecache.cache.verifier.forest import Forest
from sidecache.cache.verifier.rules import VETOES, contradictions
from sidecache.errors import ConfigError


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0


class Verifier:
    """Decides whether a cached answer may serve a new prompt; immutable and thread-safe.

    ``check`` is what the cache calls after a FAISS match passed the cosine threshold; ``score``
    is the same decision as a number in [0, 1] for threshold sweeps (0 when a hard veto fires).
    Pass the two sentence vectors when you have them (the cache does: the query's was just
    searched with, the entry's is stored): the learned projection of them is the strongest
    single feature on general questions. Without them the trees fall back to the text features.
    """

    def __init__(
        self,
        forest: Forest | None,
        cutoff: float,
        vetoes: Sequence[str],
        lexical: Lexical = EMPTY_LEXICAL,
        projection: np.ndarray | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        unknown = set(vetoes) - set(VETOES)
        if unknown:
            raise ConfigError(f"verifier model names unknown vetoes: {sorted(unknown)}")
        self.forest = forest
        self.cutoff = float(cutoff)
        self.vetoes = tuple(vetoes)
        self.lexical = lexical
        self.projection = projection
        self.meta = dict(meta or {})
        self._memo = AnalysisMemo()

    @classmethod
    def load(cls, path: str | None = None) -> Verifier:
        """Read learned parameters; ``None`` or ``""`` means the file shipped in the package."""
        data = model_file.read_model_bytes(path)
        try:
            return cls.from_spec(model_file.parse_model(data))
        except (KeyError, TypeError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            name = path or model_file.SHIPPED_MODEL
            raise ConfigError(f"verifier model {name} is malformed: {exc}") from exc

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Verifier:
        """Build from the decoded JSON (the training script writes this shape)."""
        names = tuple(spec.get("features", FEATURE_NAMES))
        if names != FEATURE_NAMES:
            raise ConfigError("verifier model was trained on other features; retrain it")
        lex = model_file.read_lexical(spec["lexical"]) if "lexical" in spec else EMPTY_LEXICAL
        forest = model_file.read_forest(spec["forest"]) if spec.get("forest") else None
        proj = model_file.read_projection(spec["projection"]) if spec.get("projection") else None
        return cls(
            forest=forest,
            cutoff=float(spec.get("cutoff", 0.5)),
            vetoes=tuple(spec.get("vetoes", VETOES)),
            lexical=lex,
            projection=proj,
            meta=spec.get("meta", {}),
        )

    @classmethod
    def rules_only(cls) -> Verifier:
        """The contradiction checks alone, with no learned score (a fallback and for tests)."""
        return cls(forest=None, cutoff=0.5, vetoes=VETOES)

    def with_cutoff(self, cutoff: float | None) -> Verifier:
        """The same model with another probability cutoff (``None``: keep the shipped one)."""
        if cutoff is None:
            return self
        return Verifier(self.forest, cutoff, self.vetoes, self.lexical, self.projection, self.meta)

    @property
    def vectors(self) -> str:
        """The embedder whose vectors the projection was trained on
        (``sidecache.cache.embedder.vectors_id``; models from before adapters say nothing)."""
        return str(self.meta.get("vectors", "bundled"))

    def for_embedder(self, vectors: str) -> Verifier:
        """This model, or a copy that ignores sentence vectors if they come from another embedder.

        A projection trained on other vectors would score nonsense (an adapter moves every
        vector), whereas the trees were also trained on rows without vectors, so judging by the
        text alone is the safe fallback.
        """
        if vectors == self.vectors or self.projection is None:
            return self
        return Verifier(self.forest, self.cutoff, self.vetoes, self.lexical, None, self.meta)

    def project_cosine(self, qvec: np.ndarray | None, cvec: np.ndarray | None) -> float:
        """Cosine after the learned projection, NaN without vectors or projection."""
        if qvec is None or cvec is None or self.projection is None:
            return math.nan
        u = self.projection @ np.asarray(qvec, dtype=np.float32).ravel()
        v = self.projection @ np.asarray(cvec, dtype=np.float32).ravel()
        nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
        return float(u @ v) / (nu * nv) if nu > 0 and nv > 0 else math.nan

    def features(
        self,
        query: str,
        cached: str,
        similarity: float,
        qvec: np.ndarray | None = None,
        cvec: np.ndarray | None = None,
    ) -> np.ndarray:
        """The feature vector the learned score sees (for training and debugging)."""
        qa, ca = self._memo.get(query), self._memo.get(cached)
        return pair_features(
            qa, ca, similarity, self.lexical, proj_cosine=self.project_cosine(qvec, cvec)
        )

    def explain(
        self,
        query: str,
        cached: str,
        similarity: float,
        qvec: np.ndarray | None = None,
        cvec: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Why a pair is accepted or refused: the vetoes that fired and the learned score."""
        qa, ca = self._memo.get(query), self._memo.get(cached)
        found = contradictions(qa, ca)
        prob = self._prob(qa, ca, similarity, found, qvec, cvec)
        active = [v for v in found if v in self.vetoes]
        return {
            "vetoes": active,
            "probability": prob,
            "cutoff": self.cutoff,
            "ok": query == cached or (not active and prob >= self.cutoff),
        }

    def _prob(
        self,
        qa: PromptAnalysis,
        ca: PromptAnalysis,
        similarity: float,
        found: Sequence[str],
        qvec: np.ndarray | None,
        cvec: np.ndarray | None,
    ) -> float:
        if self.forest is None:
            return 1.0
        x = pair_features(qa, ca, similarity, self.lexical, found, self.project_cosine(qvec, cvec))
        return _sigmoid(float(self.forest.predict_raw(x)[0]))

    def score(
        self,
        query: str,
        cached: str,
        similarity: float,
        qvec: np.ndarray | None = None,
        cvec: np.ndarray | None = None,
    ) -> float:
        """Probability that ``cached``'s answer serves ``query``; 0.0 when a hard veto fires."""
        if query == cached:
            return 1.0
        qa, ca = self._memo.get(query), self._memo.get(cached)
        found = contradictions(qa, ca)
        if any(v in self.vetoes for v in found):
            return 0.0
        return self._prob(qa, ca, similarity, found, qvec, cvec)

    def check(
        self,
        query: str,
        cached: str,
        similarity: float,
        qvec: np.ndarray | None = None,
        cvec: np.ndarray | None = None,
    ) -> bool:
        """True when the cached answer may be served for ``query``."""
        return self.score(query, cached, similarity, qvec, cvec) >= self.cutoff
