"""Domain errors. Domain code raises these; the one gRPC interceptor maps them to status codes.

Messages are shown to the caller: they say what is wrong and never echo a secret or a full ID number.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: a request the platform refuses for a reason the caller can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """The request is malformed or breaks a rule (length, format, password policy)."""


class NotFound(DomainError):
    """The thing asked for does not exist (or the caller may not know it exists)."""


class AlreadyExists(DomainError):
    """The thing to create exists already (an account activated twice)."""


class FailedPrecondition(DomainError):
    """The system is not in the state the request needs (TOTP not enrolled yet)."""


class Unauthenticated(DomainError):
    """Credentials are missing or wrong."""


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""


class ResourceExhausted(DomainError):
    """A limit is exceeded (a size, a rate): the same request fails again until the limit allows it."""


class Aborted(DomainError):
    """A concurrent change got in the way (a key rotated, a version taken): the request may be sent again."""


class DataLoss(DomainError):
    """Stored data is damaged: what was read of it must not be trusted."""


class Unavailable(DomainError):
    """A server the platform depends on (PostgreSQL, S3) cannot be reached now: the same request may succeed
    later."""


class Throttled(ResourceExhausted):
    """Too many failures: the caller must wait ``retry_after`` seconds (or, if locked, ask an operator)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
