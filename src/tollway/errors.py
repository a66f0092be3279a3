"""Tollway's single exception tree.

Every error the gateway can answer with knows its HTTP status and its error
type, and is rendered once, in the caller's API shape (OpenAI or Anthropic)::

    TollwayError
    ├── ConfigError                 invalid configuration (raised at start, never rendered)
    ├── InvalidRequest        400   malformed JSON, missing or wrong fields
    │   ├── NotFound          404   no such endpoint or resource
    │   │   └── UnknownModel  404   the model is not served by this gateway
    │   ├── MethodNotAllowed  405
    │   └── BodyTooLarge      413   request body over the configured limit
    ├── AuthError             401   missing, unknown, revoked or expired key
    │   └── PermissionDenied  403   the key may not do this
    ├── BudgetExceeded        429   a hard budget limit would be passed
    ├── RateLimited           429   a rate limit would be passed
    ├── ServiceUnavailable    503   a dependency (e.g. the counter store) is down
    └── UpstreamError         502   the provider failed
        ├── UpstreamStatus    (the upstream's 4xx/5xx status)
        ├── UpstreamTimeout   504
        └── UpstreamConnect   502
"""

from __future__ import annotations

from typing import Any


class TollwayError(Exception):
    """Base of every error Tollway raises on purpose."""

    status: int = 500
    openai_type: str = "server_error"
    anthropic_type: str = "api_error"
    code: str | None = None

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = headers or {}

    def openai_body(self) -> dict[str, Any]:
        """The error as OpenAI's API shapes it."""
        return {
            "error": {
                "message": self.message,
                "type": self.openai_type,
                "param": getattr(self, "param", None),
                "code": self.code,
            }
        }

    def anthropic_body(self) -> dict[str, Any]:
        """The error as Anthropic's API shapes it."""
        return {"type": "error", "error": {"type": self.anthropic_type, "message": self.message}}


class ConfigError(TollwayError):
    """The configuration is invalid; the message names the field."""


class InvalidRequest(TollwayError):
    status = 400
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class NotFound(InvalidRequest):
    status = 404
    anthropic_type = "not_found_error"
    code = "not_found"


class MethodNotAllowed(InvalidRequest):
    status = 405
    code = "method_not_allowed"


class UnknownModel(NotFound):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(f"The model '{model}' does not exist on this gateway.", param="model")


class BodyTooLarge(InvalidRequest):
    status = 413
    anthropic_type = "request_too_large"
    code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is larger than the limit of {limit} bytes.")


class AuthError(TollwayError):
    status = 401
    openai_type = "invalid_request_error"
    anthropic_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(AuthError):
    status = 403
    anthropic_type = "permission_error"
    code = "permission_denied"


class BudgetExceeded(TollwayError):
    status = 429
    openai_type = "insufficient_quota"
    anthropic_type = "rate_limit_error"
    code = "budget_exceeded"


class RateLimited(TollwayError):
    status = 429
    openai_type = "rate_limit_exceeded"
    anthropic_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class ServiceUnavailable(TollwayError):
    status = 503
    openai_type = "server_error"
    anthropic_type = "overloaded_error"
    code = "service_unavailable"


class UpstreamError(TollwayError):
    """The provider failed; `retryable` says whether another deployment may be tried."""

    status = 502
    openai_type = "upstream_error"
    anthropic_type = "api_error"
    code = "upstream_error"
    retryable = True
    attempts = 1  # how many deployments were tried before giving up


class UpstreamStatus(UpstreamError):
    """The provider answered with an error status; its body is kept for the caller."""

    def __init__(self, status: int, message: str, upstream_body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.upstream_body = upstream_body
        self.retryable = status == 429 or status >= 500
        if status == 429:
            self.openai_type, self.anthropic_type = "rate_limit_exceeded", "rate_limit_error"
        elif status == 529:
            self.anthropic_type = "overloaded_error"
        elif status < 500:
            self.openai_type = self.anthropic_type = "invalid_request_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    openai_type = "timeout"
    anthropic_type = "timeout_error"
    code = "upstream_timeout"


class UpstreamConnect(UpstreamError):
    code = "upstream_unreachable"
