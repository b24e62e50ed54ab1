"""OpenAI's wire format, and nothing else: request Structs, chunk accumulation and replay, SSE
framing, ids.

Used alike by ``api/`` (decoding what clients send), ``pipeline`` (relaying and replaying
answers) and ``providers/`` (speaking to upstreams), so none of them imports another for it.
"""
