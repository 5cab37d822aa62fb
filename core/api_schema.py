"""The OpenAPI schema's answers: drf-spectacular's AutoSchema, plus the error answers every operation
can give (core.api_errors), worked out from the view's method, path, pagination, authentication and
throttles. A view that answers more (409, a 404 for an id in its body) lists them with ``errors()``."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse

from .login_throttle import ThrottledBasicAuthentication
from .token_api import ThrottledObtainAuthToken

ERROR_REF = {"$ref": "#/components/schemas/Error"}
BAD_REQUEST_REF = {"$ref": "#/components/schemas/BadRequest"}

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
    "description": "An error with its message.",
}
BAD_REQUEST_SCHEMA = {
    "anyOf": [
        ERROR_REF,
        {
            "type": "object",
            "additionalProperties": {},
            "description": "Messages per field: {field: [message]} (nested for nested fields), or {field: message}.",
        },
    ],
    "description": 'A refused request: {"detail": message}, or the messages of the fields at fault.',
}

DESCRIPTIONS = {
    400: "The request is refused: a field, parameter or domain rule (core.errors.ApplicationError) says why.",
    401: "Not signed in, or the credentials are wrong (the WWW-Authenticate header names the scheme).",
    403: "Not allowed: not signed in (session), wrong credentials, or no role that permits this.",
    404: "No such object visible to you (or no such page of results).",
    409: "The request conflicts with the object's state.",
    429: "Too many requests: over the rate limit, or too many failed logins (locked out for a while).",
    503: (
        "Redis is unreachable and the request signs in with a password (Basic auth, the token endpoint), "
        "whose failed logins are counted there; try again after Retry-After seconds. A session needs no "
        "Redis, nor does starting a job (recorded, and sent to the task queue once Redis is back)."
    ),
}
# What a throttled operation (moderation) answers while Redis, which holds its rate limit, is down.
THROTTLE_STORE_DOWN = (
    "Redis, which counts this operation's rate limit (and failed logins), is unreachable; nothing was "
    "decided, try again after Retry-After seconds."
)
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."}}
BODY_METHODS = {"POST", "PUT", "PATCH"}
UNCHECKED_QUERY_PARAMETERS = {"page", "format", "lang"}  # a wrong page or format is a 404; lang is not checked


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Error answers a view documents itself, e.g. ``responses={200: X, **errors(409)}``."""
    return {code: OpenApiResponse(BAD_REQUEST_REF if code == 400 else ERROR_REF, DESCRIPTIONS[code]) for code in codes}


class ApiSchema(AutoSchema):
    """drf-spectacular's AutoSchema, adding the error answers the view's classes imply."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        self._register_error_components()
        for code in self.error_codes():
            answer = errors(code)[code]
            if code == 503 and self.view.get_throttles():
                answer = OpenApiResponse(ERROR_REF, THROTTLE_STORE_DOWN)
            responses.setdefault(str(code), self._get_response_for_code(answer, str(code)))
        for code in ("429", "503"):
            if code in responses:
                responses[code].setdefault("headers", RETRY_AFTER)
        return dict(sorted(responses.items()))

    def error_codes(self) -> list[int]:
        """What core.api_errors and DRF can answer for this operation."""
        authenticators = self.view.get_authenticators()
        takes_passwords = isinstance(self.view, ThrottledObtainAuthToken) or any(
            isinstance(authenticator, ThrottledBasicAuthentication) for authenticator in authenticators
        )
        codes = [403]
        query = {parameter["name"] for parameter in self._get_parameters() if parameter["in"] == "query"}
        if self.method in BODY_METHODS or query - UNCHECKED_QUERY_PARAMETERS:
            codes.append(400)
        if authenticators and authenticators[0].authenticate_header(None):  # the first one challenges: 401
            codes.append(401)
        if "{" in self.path or query & {"page", "format"}:  # no such id, page or format
            codes.append(404)
        if takes_passwords or self.view.get_throttles():  # axes' lockout, DRF throttles
            codes += [429, 503]  # both count in the "throttle" cache, Redis when REDIS_URL is set
        return sorted(codes)

    def _register_error_components(self) -> None:
        for name, schema in (("Error", ERROR_SCHEMA), ("BadRequest", BAD_REQUEST_SCHEMA)):
            self.registry.register_on_missing(
                ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
            )

