"""The token endpoint, answering 429 while axes has the account locked out (core.login_throttle)."""

from drf_spectacular.authentication import BasicScheme
from rest_framework import exceptions
from rest_framework.authtoken.views import ObtainAuthToken

from .login_throttle import locked_out


class ThrottledObtainAuthToken(ObtainAuthToken):
    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except exceptions.ValidationError:
            if getattr(request, "axes_locked_out", False):
                raise locked_out(request) from None
            raise


obtain_auth_token = ThrottledObtainAuthToken.as_view()


class ThrottledBasicScheme(BasicScheme):
    """The OpenAPI security scheme of Basic auth, for its throttled subclass."""

    target_class = "core.login_throttle.ThrottledBasicAuthentication"
