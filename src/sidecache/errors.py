"""The one exception hierarchy of the gateway.

Every error that can reach a client is a ``GatewayError``: it carries the HTTP status and the
OpenAI error fields (``type``, ``code``, ``param``) so that ``api/`` can turn any of them into
``{"error": {...}}`` without knowing where it came from. Lower layers raise the most specific
class and chain the cause with ``raise ... from exc``.

    GatewayError
    ├── ConfigError                      (start-up only: a bad field in the TOML file)
    ├── BadRequest               400
    │   └── InvalidJSON          400
    ├── AuthenticationError      401
    ├── PermissionDenied         403
    ├── NotFound                 404
    │   └── ModelNotFound        404
    ├── RequestTimeout           408     (the body did not arrive in time)
    ├── PayloadTooLarge          413
    ├── UnprocessableEntity      422
    ├── RateLimited              429     (retry_after seconds)
    │   └── BudgetExceeded       429
    ├── UpstreamError            502     (an upstream answered badly or not at all)
    │   ├── UpstreamStatusError  502     (an HTTP status from the upstream: 429, 5xx, 4xx)
    │   ├── UpstreamConnectError 502
    │   └── UpstreamProtocolError 502    (malformed SSE or JSON, a cut stream)
    ├── UpstreamTimeout          504
    └── ServiceUnavailable       503     (no target available: all circuits open, not ready)
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of all errors the gateway reports to a client."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None
    provider: str = ""
    """The upstream provider the error came from, when there was one (for accounting)."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, object]:
        """The OpenAI error body."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class ConfigError(GatewayError):
    """The configuration file or environment is invalid; raised at start-up."""

    type = "configuration_error"


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class InvalidJSON(BadRequest):
    code = "invalid_json"


class AuthenticationError(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "invalid_request_error"
    code = "model_not_allowed"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class RequestTimeout(GatewayError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class UnprocessableEntity(GatewayError):
    status = 422
    type = "invalid_request_error"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_exceeded"
    code = "rate_limit_exceeded"


class BudgetExceeded(RateLimited):
    type = "insufficient_quota"
    code = "budget_exceeded"


class UpstreamError(GatewayError):
    """An upstream failed; ``retryable`` tells the router whether another target may help."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"
    retryable: bool = True


class UpstreamStatusError(UpstreamError):
    """The upstream answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(
            message, retry_after=retry_after, code=code or f"upstream_{upstream_status}"
        )
        self.upstream_status = upstream_status
        # 4xx other than 408/409/429 are the client's fault: another target would say the same.
        self.retryable = upstream_status in (408, 409, 429) or upstream_status >= 500
        if not self.retryable and 400 <= upstream_status < 500:
            self.status = upstream_status
            self.type = "invalid_request_error"


class UpstreamConnectError(UpstreamError):
    code = "upstream_connect_error"


class UpstreamProtocolError(UpstreamError):
    code = "upstream_protocol_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "timeout"
    code = "upstream_timeout"


class ServiceUnavailable(GatewayError):
    status = 503
    type = "service_unavailable"
    code = "service_unavailable"
