"""Password guessing is throttled by django-axes on every door that takes a password.

The login form and the admin login go through ``django.contrib.auth.authenticate`` with the request,
so axes counts failures and ``AxesMiddleware`` answers a locked-out client with HTTP 429 and a
message. DRF wraps the request in its own object, where axes leaves its "locked out" flag; Basic
auth and the token endpoint here turn that flag into DRF's 429 (Throttled) with the same message.
A right password on either door clears the account's failures, as a form login does.
Settings: README "Login throttling".
"""

from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_lockout_message
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lockout check; a call without a request (shell, test client) has nothing to throttle."""

    def authenticate(self, request=None, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def forget_failed_logins(request, user) -> None:
    """What axes does on a form login (AXES_RESET_ON_SUCCESS): the failures counted for this client end."""
    AxesProxyHandler.user_logged_in(sender=type(user), request=request, user=user)


def locked_out(request) -> exceptions.Throttled:
    return exceptions.Throttled(detail=f"Too many failed logins: {get_lockout_message()}")


class ThrottledBasicAuthentication(BasicAuthentication):
    def authenticate_credentials(self, userid, password, request=None):
        try:
            user, auth = super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            if getattr(request, "axes_locked_out", False):
                raise locked_out(request) from None
            raise
        forget_failed_logins(request, user)
        return user, auth
