"""The response cache: policy and scope, embedder backends, micro-batcher, FAISS indexes, store.

``semantic.SemanticCache`` is what the gateway calls; ``policy.decide`` turns a request body into
a ``Decision`` for it. Nothing here knows about HTTP or providers: plain dicts and bytes in and
out. Modules are imported where needed (onnxruntime and faiss are heavy; torch, only in the
torch extra, is never imported for the default embedder).
"""
