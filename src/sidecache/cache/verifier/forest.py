"""The learned score's evaluator: gradient-boosted trees as flat numpy arrays.

Knows nothing of the file they come from (:mod:`.model_file` decodes them) nor of the features.
"""

from __future__ import annotations

import numpy as np

NODE_FIELDS = (
    ("feature", np.int16),
    ("threshold", np.float64),  # float32 would move thresholds that sit on data values
    ("left", np.int16),
    ("right", np.int16),
    ("value", np.float32),
    ("flags", np.uint8),  # bit 0: leaf, bit 1: missing values go left
)


class Forest:
    """Gradient-boosted trees as flat arrays, evaluated for all trees at once in numpy.

    Exported from scikit-learn's HistGradientBoostingClassifier by the training script, so the
    gateway needs neither scikit-learn nor pickle: a few arrays of numbers in the JSON file,
    one row per tree, one column per node (padded with leaves).

    Evaluation is QuickScorer's (Lucchese et al., SIGIR 2015), which suits numpy: no walk at
    all. Each split node carries a bitmask of its tree's leaves (in left-to-right order) with
    the bits of its left subtree cleared. For a row, every node whose test sends it right
    contributes its mask; AND-ing a tree's masks leaves the exit leaf as the lowest set bit.
    That is a handful of whole-array operations whatever the depth, where a level-by-level
    walk needed four per level (depth 18 here): about half the time per call.
    """

    def __init__(
        self,
        baseline: float,
        depth: int,
        feature: np.ndarray,
        threshold: np.ndarray,
        left: np.ndarray,
        right: np.ndarray,
        value: np.ndarray,
        flags: np.ndarray,
    ) -> None:
        """Node arrays of shape (trees, width), as :data:`NODE_FIELDS` names them."""
        self.baseline = float(baseline)
        self.depth = int(depth)
        self.feature = feature.astype(np.intp)
        self.threshold = threshold.astype(np.float64)
        self.left = left.astype(np.intp)
        self.right = right.astype(np.intp)
        self.value = value.astype(np.float64)
        self.leaf = (flags & 1).astype(bool)
        self.missing_left = (flags & 2).astype(bool)
        self.n_trees, self.width = self.feature.shape
        self._build_masks()
        # flat indexing: node k of tree t lives at t * width + k
        self.offset = np.arange(self.n_trees, dtype=np.intp) * self.width
        for name in ("feature", "threshold", "left", "right", "value", "leaf", "missing_left"):
            setattr(self, name, getattr(self, name).ravel())

    def _build_masks(self) -> None:
        """QuickScorer tables from the (trees, width) node arrays: per split node its feature,
        threshold, NaN direction and leaf mask (padded per tree with no-op nodes), and the
        leaf values in left-to-right order."""
        n_trees, width = self.feature.shape
        splits: list[list[tuple[int, int]]] = []  # per tree: (node, mask)
        values: list[list[float]] = []
        most = 1
        for t in range(n_trees):
            leaf, left, right = self.leaf[t], self.left[t], self.right[t]
            rank: dict[int, int] = {}
            first: dict[int, int] = {}  # node -> rank of its first leaf
            stack: list[tuple[int, bool]] = [(0, False)]
            while stack:  # iterative in-order numbering of the leaves
                node, done = stack.pop()
                if leaf[node]:
                    first[node] = rank[node] = len(rank)
                elif done:
                    first[node] = first[int(left[node])]
                else:
                    stack += [(node, True), (int(right[node]), False), (int(left[node]), False)]
            most = max(most, len(rank))
            tree_splits = []
            for node in range(width):
                if node in first and not leaf[node]:
                    lo, hi = first[int(left[node])], first[int(right[node])]
                    tree_splits.append((node, ((1 << hi) - 1) ^ ((1 << lo) - 1)))
            splits.append(tree_splits)
            values.append([float(self.value[t, n]) for n in sorted(rank, key=rank.__getitem__)])
        if most > 64:
            raise ValueError(f"verifier trees have up to {most} leaves; 64 at most are supported")
        per_tree = max(1, max(len(ts) for ts in splits))
        # Bitmasks as narrow as the widest tree allows; node arrays laid out split-major
        # ([k, tree]) so the per-tree AND runs down contiguous rows.
        dtype = np.uint32 if most <= 32 else np.uint64
        feature = np.zeros((per_tree, n_trees), dtype=np.intp)
        threshold = np.full((per_tree, n_trees), np.inf)  # padding never goes right
        nan_right = np.zeros((per_tree, n_trees), dtype=bool)
        cleared = np.zeros((per_tree, n_trees), dtype=dtype)  # padding clears nothing
        leaf_values = np.zeros((n_trees, most))
        for t, ts in enumerate(splits):
            for k, (node, bits) in enumerate(ts):
                feature[k, t] = self.feature[t, node]
                threshold[k, t] = self.threshold[t, node]
                nan_right[k, t] = not self.missing_left[t, node]
                cleared[k, t] = bits
            leaf_values[t, : len(values[t])] = values[t]
        self._q_feature = feature.ravel()
        self._q_threshold = threshold.ravel()
        self._q_nan_right = nan_right.ravel()
        self._q_cleared = cleared.ravel()
        self._q_shape = (per_tree, n_trees)
        self._q_one = dtype(1)
        self._q_values = leaf_values.ravel()
        self._q_leaf_base = np.arange(n_trees, dtype=np.intp) * most

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        """Raw scores (log-odds) for a (n, n_features) matrix."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        v = np.take(x, self._q_feature, axis=1)  # every split's feature value, (n, nodes)
        right = v > self._q_threshold  # NaN compares False: decided below
        if np.isnan(x).any():
            right |= np.isnan(v) & self._q_nan_right
        masks = ~(right * self._q_cleared)  # a split sent right rules out its left leaves
        alive = np.bitwise_and.reduce(masks.reshape(len(x), *self._q_shape), axis=1)
        lowest = alive & (~alive + self._q_one)  # the exit leaf's bit
        exit_leaf = np.frexp(lowest.astype(np.float64))[1] - 1  # exact for powers of two
        out: np.ndarray = self.baseline + self._q_values[exit_leaf + self._q_leaf_base].sum(axis=1)
        return out

    def predict_raw_reference(self, x: np.ndarray) -> np.ndarray:
        """The plain node-by-node walk ``predict_raw`` must agree with (tests use it)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        out = np.empty(len(x))
        for k, row in enumerate(x):
            node = self.offset.copy()
            for _ in range(self.depth + 1):
                leaf = self.leaf[node]
                if leaf.all():
                    break
                v = row[self.feature[node]]
                go_left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
                nxt = np.where(go_left, self.left[node], self.right[node]) + self.offset
                node = np.where(leaf, node, nxt)
            out[k] = self.baseline + float(self.value[node].sum())
        return out
