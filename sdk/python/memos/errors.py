"""memosd's errors as exceptions: one class per error code (memos.h,
enum memos_code), each a MemosError carrying the daemon's message and
whether a retry may succeed."""

from __future__ import annotations


class MemosError(Exception):
    """A refused or failed call. `code` is the code's name as memosd's wire
    spells it ("notFound"); `retryable` says whether the same call may
    succeed later, and `retry_after_ms` when (rate limits)."""

    code = "unknown"

    def __init__(self, message: str, *, retryable: bool = False, retry_after_ms: int = 0,
                 code: str | None = None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class BadRequest(MemosError):
    code = "badRequest"


class NotFound(MemosError):
    code = "notFound"


class AlreadyExists(MemosError):
    code = "alreadyExists"


class TooLarge(MemosError):
    code = "tooLarge"


class Busy(MemosError):
    code = "busy"


class Unavailable(MemosError):
    code = "unavailable"


class Internal(MemosError):
    code = "internal"


class Conflict(MemosError):
    code = "conflict"


class PermissionDenied(MemosError):
    code = "permissionDenied"


class StorageFull(MemosError):
    code = "storageFull"


class QuotaExceeded(MemosError):
    code = "quotaExceeded"


class RateLimited(MemosError):
    code = "rateLimited"


class Unknown(MemosError):
    code = "unknown"


class ConnectFailed(MemosError):
    code = "connectFailed"


class ConnectionLost(MemosError):
    code = "connectionLost"


class ProtocolError(MemosError):
    code = "protocolError"


class NoMemory(MemosError):
    code = "noMemory"


# By enum memos_code's value (1: MEMOS_BAD_REQUEST ...).
BY_CODE: dict[int, type[MemosError]] = {
    number: cls for number, cls in enumerate(
        (None, BadRequest, NotFound, AlreadyExists, TooLarge, Busy, Unavailable, Internal,
         Conflict, PermissionDenied, StorageFull, QuotaExceeded, RateLimited, Unknown,
         ConnectFailed, ConnectionLost, ProtocolError, NoMemory)) if cls is not None
}


def from_code(code: int, message: str, retryable: bool, retry_after_ms: int) -> MemosError:
    cls = BY_CODE.get(code, Unknown)
    return cls(message, retryable=retryable, retry_after_ms=retry_after_ms)
