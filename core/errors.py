"""The one application error class: every domain error (LabelError, JuryError, EvaluationError…)
subclasses it, and the API's exception handler (core.api_errors) answers it with its status and body."""

from typing import Any


class ApplicationError(ValueError):
    """A request the domain refuses. The API answers ``status_code`` (400) with ``{"detail": message}``;
    a subclass that names a field answers with that field instead (its ``response_body``).
    A ValueError, so code that catches ValueError keeps catching it."""

    status_code = 400

    def response_body(self) -> dict[str, Any]:
        return {"detail": str(self)}

