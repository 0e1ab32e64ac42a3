"""Domain errors raised by the services; app.main maps each to its HTTP answer."""


class ServiceError(Exception):
    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class Forbidden(ServiceError):
    status_code = 403


class Unauthorized(ServiceError):
    status_code = 401


class Invalid(ServiceError):
    status_code = 422


class Unavailable(ServiceError):
    status_code = 503


class RateLimited(ServiceError):
    status_code = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Busy(RateLimited):
    """Too much work queued in this process: 503 with Retry-After, try again shortly."""

    status_code = 503


class TooLarge(ServiceError):
    status_code = 413


class UnsupportedType(ServiceError):
    status_code = 415
