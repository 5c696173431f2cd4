"""``tf.errors``: TensorFlow's OpError classes, raised by ``tfckpt.compat`` where TensorFlow's
reader raises them, so ``except tf.errors.NotFoundError`` in a script keeps working."""

from __future__ import annotations

from typing import Any, Optional

from .namespace import missing

OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND = 0, 1, 2, 3, 4, 5
ALREADY_EXISTS, PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION = 6, 7, 8, 9
ABORTED, OUT_OF_RANGE, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS = 10, 11, 12, 13, 14, 15
UNAUTHENTICATED = 16


class OpError(Exception):
    """TensorFlow's base error: ``str(e)`` is the message; ``error_code`` the status code."""

    def __init__(
        self, node_def: Any, op: Any, message: str, error_code: Optional[int] = None, *args: Any
    ) -> None:
        super().__init__(message, *args)
        self._node_def, self._op, self._message = node_def, op, message
        self._error_code = error_code

    @property
    def message(self) -> str:
        return self._message

    @property
    def op(self) -> Any:
        return self._op

    @property
    def node_def(self) -> Any:
        return self._node_def

    @property
    def error_code(self) -> Optional[int]:
        return self._error_code

    def __str__(self) -> str:
        return self._message

    def __reduce__(self) -> Any:
        return type(self), (self._node_def, self._op, self._message, self._error_code)


def _subclass(name: str, code: int) -> type:
    def __init__(self: OpError, node_def: Any, op: Any, message: str, *args: Any) -> None:
        OpError.__init__(self, node_def, op, message, code, *args)

    def __reduce__(self: OpError) -> Any:
        return type(self), (self.node_def, self.op, self.message)

    return type(
        name,
        (OpError,),
        {
            "__init__": __init__,
            "__reduce__": __reduce__,
            "__module__": __name__,
            "__doc__": f"Status code {code}.",
        },
    )


CancelledError = _subclass("CancelledError", CANCELLED)
UnknownError = _subclass("UnknownError", UNKNOWN)
InvalidArgumentError = _subclass("InvalidArgumentError", INVALID_ARGUMENT)
DeadlineExceededError = _subclass("DeadlineExceededError", DEADLINE_EXCEEDED)
NotFoundError = _subclass("NotFoundError", NOT_FOUND)
AlreadyExistsError = _subclass("AlreadyExistsError", ALREADY_EXISTS)
PermissionDeniedError = _subclass("PermissionDeniedError", PERMISSION_DENIED)
ResourceExhaustedError = _subclass("ResourceExhaustedError", RESOURCE_EXHAUSTED)
FailedPreconditionError = _subclass("FailedPreconditionError", FAILED_PRECONDITION)
AbortedError = _subclass("AbortedError", ABORTED)
OutOfRangeError = _subclass("OutOfRangeError", OUT_OF_RANGE)
UnimplementedError = _subclass("UnimplementedError", UNIMPLEMENTED)
InternalError = _subclass("InternalError", INTERNAL)
UnavailableError = _subclass("UnavailableError", UNAVAILABLE)
DataLossError = _subclass("DataLossError", DATA_LOSS)
UnauthenticatedError = _subclass("UnauthenticatedError", UNAUTHENTICATED)


def __getattr__(name: str) -> Any:
    missing("tensorflow.errors", name)
