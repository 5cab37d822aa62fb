"""API views whose token-authenticated JSON requests skip DRF's request machinery.

The annotator's loop (``next``, ``submit``) is two requests per labelled item, and DRF's request
wrapping, content negotiation, authenticator chain and response finalising cost about as much CPU
as the work itself. A ``LeanJSONView`` answers the common case directly: an ``Authorization:
Token`` header, no session cookie, a JSON body (or none) and a JSON answer accepted. It reads the
token with the same statement as the API's authenticator, renders with DRF's JSON renderer (the
same bytes), and hands any error to DRF's own exception handling, so that status codes and
bodies are the API's. Every other request (session or basic auth, the browsable API, another
content type) goes through DRF unchanged; the schema is DRF's, from the view class.
"""

import io
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .token_auth import OneStatementTokenAuthentication

PARSER = JSONParser()
RENDERER = JSONRenderer()
AUTHENTICATION = OneStatementTokenAuthentication()
JSON_ACCEPTED = ("", "*/*", "application/json")


def takes_lean_path(request: HttpRequest) -> bool:
    """Token auth, no session, JSON in (or nothing) and JSON out, no format override."""
    if not request.META.get("HTTP_AUTHORIZATION", "").startswith("Token "):
        return False
    if settings.SESSION_COOKIE_NAME in request.COOKIES or "format" in request.GET:
        return False
    if request.META.get("HTTP_ACCEPT", "") not in JSON_ACCEPTED:
        return False
    content_type = request.META.get("CONTENT_TYPE", "")
    return content_type.split(";")[0].strip() in ("", "application/json")


def json_body(request: HttpRequest) -> Any:
    """The request's JSON body ({} when empty), read by DRF's own parser (strict JSON, its errors)."""
    if not request.body:
        return {}
    return PARSER.parse(io.BytesIO(request.body))


class LeanJSONView(APIView):
    """An APIView with one ``respond(user, data, **kwargs) -> (body, status)`` for POST, served
    through DRF or, for token-authenticated JSON requests, without it (module docstring).
    ``respond`` reads query parameters from ``self.request.GET`` (either path's request has it)."""

    http_method_names = ["post", "options"]

    def respond(self, user, data: Any, **kwargs) -> tuple[Any, int]:
        raise NotImplementedError

    def post(self, request, **kwargs) -> Response:
        body, status = self.respond(request.user, request.data, **kwargs)
        return Response(body, status=status)

    def dispatch(self, request, *args, **kwargs):
        if request.method != "POST" or not takes_lean_path(request):
            return super().dispatch(request, *args, **kwargs)
        self.request, self.args, self.kwargs = request, args, kwargs
        try:
            user, _ = AUTHENTICATION.authenticate(request)
            request.user = user
            body, status = self.respond(user, json_body(request), **kwargs)
        except Exception as error:  # noqa: BLE001 - answered by DRF's handler, as on its own path
            return self.answer_error(request, error, *args, **kwargs)
        return HttpResponse(RENDERER.render(body), status=status, content_type="application/json")

    def answer_error(self, request, error: Exception, *args, **kwargs):
        """The error as DRF's dispatch answers it (its handler re-raises what it does not know)."""
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        self.headers = self.default_response_headers
        response = self.handle_exception(error)
        self.response = self.finalize_response(drf_request, response, *args, **kwargs)
        return self.response
