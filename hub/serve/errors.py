"""API errors in OpenAI's envelope: ``{"error": {"message", "type", "param", "code"}}``."""
from __future__ import annotations

from hub.errors import HubError, InputError, OptionError, TaskMismatchError, UnknownModelError, UnknownTaskError

TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
         413: "request_too_large", 422: "invalid_request_error", 429: "rate_limit_exceeded",
         500: "server_error", 503: "service_unavailable", 504: "timeout"}


class ApiError(Exception):
    """An error answered to the client: HTTP status, a message naming the problem and the fix, param, code."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return envelope(self.status, self.message, self.param, self.code)


def envelope(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    """The OpenAI error body for ``status``."""
    return {"error": {"message": message, "type": TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": code}}


def from_hub_error(exc: HubError, param: str | None = None) -> ApiError:
    """The API error for a hub error: unknown ids are 404, bad inputs and options 400 (an option over the model's
    limit 422), a model whose output is not finite or breaks the result contract 500, the rest 400."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, UnknownModelError):
        return ApiError(404, str(exc), "model", "model_not_found")
    if isinstance(exc, UnknownTaskError):
        return ApiError(400, str(exc), "task", "unknown_task")
    if isinstance(exc, TaskMismatchError):
        return ApiError(400, str(exc), "task", "task_mismatch")
    from hub.options import OptionLimitError
    from hub.tasks.finite import NonFiniteOutputError

    if isinstance(exc, OptionLimitError):  # over a limit of the model: refused before anything was allocated
        return ApiError(422, str(exc), param or "options", "option_over_limit")
    if isinstance(exc, NonFiniteOutputError):  # the model is at fault, not the request
        return ApiError(500, str(exc), None, "non_finite_output")
    from hub.tasks.serialisable import ResultContractError

    if isinstance(exc, ResultContractError):  # the plugin is at fault, not the request
        return ApiError(500, str(exc), None, "result_contract")
    if isinstance(exc, OptionError):
        return ApiError(400, str(exc), param or "options", "invalid_option")
    if isinstance(exc, InputError):
        return ApiError(400, str(exc), param or "inputs", "invalid_input")
    return ApiError(400, str(exc), param, "hub_error")
