"""The API's failures as the exporter's callers see them, apart from the client that raises them: a command that
reads no cluster (`report --from-file`) catches them without loading the kubernetes client (0.15 s)."""

from __future__ import annotations


class ApiError(Exception):
    """A request to the API failed; `status` is the HTTP code (0 when the server was not reached)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status
