"""The hit verifier: does the stored answer really answer the new prompt?

A cosine match over sentence embeddings says two prompts are *about* the same thing; it cannot
see that "enable 2FA" and "disable 2FA", "Paris to Brussels" and "Brussels to Paris", or "Python
3.8" and "Python 3.12" want different answers (plain cosine is at chance on such pairs). So after
the FAISS match passes the threshold, :meth:`Verifier.check` looks at what differs between the
two prompts, in three layers:

1. **Contradictions** (hard vetoes): a number, unit or date that changed, a negation that flipped
   (or moved: "convex but not regular" / "regular but not convex"), an antonym that replaced its
   opposite (enable/disable, upload/download, over-/under-, pre-/post-), the two ends of a
   direction swapped ("from A to B" against "from B to A"), a programming language, framework or
   named thing replaced by another, and one word of an otherwise identical prompt swapped for an
   unrelated one ("wine with duck" / "wine with tuna": a reworded paraphrase differs in more
   places, a synonym or a misspelling is no swap).
2. **Pair features**: word, stem and character n-gram overlap, weighted by rarity; how many content
   words of each side find no counterpart on the other (by spelling or by a small distilled word
   vector table); question-word and first-word agreement; length ratios; the contradiction flags;
   and, when the caller passes the two sentence vectors, their cosine after a learned linear
   projection (the strongest single signal on general questions).
3. **A learned score** over those features: gradient-boosted trees trained by
   ``benchmarks/train_verifier.py`` on QQP and on our prompt pairs, exported to a small JSON
   file shipped in this package (``verifier_model.json``, about 3 MB) and evaluated here in
   numpy. The pair is accepted when no hard veto fires and the score reaches the cutoff.

Which contradictions are hard vetoes is part of the shipped file (all but ``entity``, which on
general questions fires too often on true duplicates and is left to the learned score). The
default ``cache.threshold`` and the shipped cutoff are chosen together by the training script.

Everything is pure CPU and allocation-light, a fraction of a millisecond per check; the text
analysis of a prompt is memoised, since cached prompts come back again and again. A
:class:`Verifier` is immutable after loading, so one instance serves all worker threads.

The package, one concept a module: :mod:`.lexicon` (word lists), :mod:`.analysis` (one prompt
analysed), :mod:`.rules` (the contradictions), :mod:`.features` (the pair features),
:mod:`.forest` (the trees' evaluator), :mod:`.model_file` (the JSON format the training script
writes and the gateway reads) and :mod:`.verifier` (the :class:`Verifier` that ties them).
"""

from sidecache.cache.verifier.analysis import PromptAnalysis, analyse
from sidecache.cache.verifier.features import FEATURE_NAMES, pair_features
from sidecache.cache.verifier.rules import VETOES, contradictions
from sidecache.cache.verifier.verifier import Verifier

__all__ = [
    "FEATURE_NAMES",
    "VETOES",
    "PromptAnalysis",
    "Verifier",
    "analyse",
    "contradictions",
    "pair_features",
]
