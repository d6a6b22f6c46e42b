"""What the ``petzarr`` command says when something goes wrong: one line, and an exit code.

A subject's failure is reported by its run (exit 1). Everything that stops a command — bad
usage, a source or destination that is not there, storage that refuses — is one line naming
the file or URL and what to do, exit 2; a :class:`PetZarrError` that is not about input,
exit 1. Anything else is a bug and keeps its traceback. ``--debug`` or ``PETZARR_DEBUG=1``
shows the traceback of every error.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator

from petzarr.cohort.errors import InvalidInputError, MissingSourceError, PetZarrError

__all__ = ["explain"]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or during, innermost last."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]


def _botocore(exc: BaseException) -> str | None:
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return "no AWS credentials found; for a public bucket add --anon"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        url = getattr(exc, "kwargs", {}).get("endpoint_url", "")
        return (
            f"cannot reach the object store {url}".rstrip()
            + "; check the network and AWS_ENDPOINT_URL"
        )
    if name == "ClientError":
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return (
                f"the object store refused the request ({code}); check the AWS credentials, "
                "or add --anon for a public bucket"
            )
    return None


def _os_error(exc: OSError) -> str:
    where = exc.filename or ""
    if isinstance(exc, FileExistsError) or exc.errno in (errno.EEXIST, errno.ENOTDIR):
        return f"{where}: is a file where a folder is needed"
    if isinstance(exc, FileNotFoundError):
        return f"{where or exc}: does not exist"
    if isinstance(exc, PermissionError):
        return f"{where or exc}: permission denied"
    return f"{where + ': ' if where else ''}{exc.strerror or exc}"


def explain(exc: BaseException) -> tuple[str, int] | None:
    """The one line and exit code for ``exc``, or None for an unforeseen error (a bug)."""
    for link in _chain(exc):
        hint = _botocore(link)
        if hint:
            return hint, 2
    if isinstance(exc, InvalidInputError | MissingSourceError):
        return str(exc), 2
    if isinstance(exc, PetZarrError):
        return str(exc), 1
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc}", 2
    if isinstance(exc, OSError):
        return _os_error(exc), 2
    return None
