"""The catwalk exception tree.

Every error catwalk raises on purpose derives from :class:`CatwalkError` and carries the HTTP
status it maps to, so the server turns any of them into a JSON response in one place and the
CLI turns any of them into a message and an exit code::

    CatwalkError (500)
    ├── SpecError (500)            model.yml is missing or invalid
    ├── ConfigError (500)          application.yml or a server option is invalid
    ├── ModelLoadError (500)       model.py failed to import or construct
    ├── RequirementsError (500)    requirements.txt could not be installed
    ├── InvalidRequest (400)       a request body or its input is malformed
    ├── ModelMismatch (404)        a request names a model this server does not serve
    ├── ModelError (500)           the user's predict() or load_test_data() raised
    ├── OutputError (500)          the model's output cannot be serialised or breaks the schema
    ├── ModelTimeout (504)         a batched request's model call took longer than server.timeout
    ├── ServeError (500)           the production server could not start or died
    └── BuildError (500)           building, pushing or running an image failed

Apart from the tree, :class:`ProcessExit` is the SystemExit of a process that is being ended
(a server worker timed out or cut by a stop): it passes through the model's call.
"""

from __future__ import annotations


class CatwalkError(Exception):
    """Base of all catwalk errors; ``status`` is the HTTP status it maps to."""

    status: int = 500

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message


class SpecError(CatwalkError):
    """``model.yml`` is missing or invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ConfigError(CatwalkError):
    """``application.yml`` or a server option is invalid."""


class ModelLoadError(CatwalkError):
    """The model folder's ``model.py`` could not be imported or its ``Model`` constructed.

    ``details`` holds the user's own traceback, with catwalk's frames left out.
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class RequirementsError(CatwalkError):
    """Installing the model's ``requirements.txt`` failed."""


class InvalidRequest(CatwalkError):
    """The request is malformed: not JSON, not an object, or its input breaks the schema."""

    status = 400


class ModelMismatch(CatwalkError):
    """The request names a model (name/version) other than the one being served."""

    status = 404


class ModelError(CatwalkError):
    """The user's model raised; ``details`` holds its traceback for the logs."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class OutputError(CatwalkError):
    """The model returned something that is not JSON-serialisable or breaks the output schema."""


class ModelTimeout(CatwalkError):
    """A batched request was not answered within ``server.timeout``."""

    status = 504


class ServeError(CatwalkError):
    """The production server could not be started, or one of its processes died."""


class BuildError(CatwalkError):
    """Building, pushing or running an image failed."""


class ProcessExit(SystemExit):
    """The process itself is ending (a signal handler raised this: gunicorn aborting a worker
    past its timeout, or a stop cutting it): unlike a SystemExit the model raises, it is not
    the model's error and passes through the model's call (no 500 is answered or logged)."""
