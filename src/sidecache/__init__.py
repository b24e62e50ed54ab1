"""sidecache: a semantic-caching LLM gateway speaking OpenAI's Chat Completions API."""

from sidecache.config import Config
from sidecache.errors import GatewayError

__version__ = "0.1.0"
__all__ = ["Config", "GatewayError", "__version__"]
