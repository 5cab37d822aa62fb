"""The token endpoint, answering 429 while axes has the account locked out (core.login_throttle)."""

from drf_spectacular.authentication import BasicScheme
from rest_framework import exceptions
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from .login_throttle import forget_failed_logins, locked_out


class ThrottledObtainAuthToken(ObtainAuthToken):
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except exceptions.ValidationError:
            if getattr(request, "axes_locked_out", False):
                raise locked_out(request) from None
            raise
        user = serializer.validated_data["user"]
        forget_failed_logins(request, user)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


obtain_auth_token = ThrottledObtainAuthToken.as_view()


class ThrottledBasicScheme(BasicScheme):
    """The OpenAPI security scheme of Basic auth, for its throttled subclass."""

    target_class = "core.login_throttle.ThrottledBasicAuthentication"
