"""Cheaper drop-ins for three stock middleware on the search site's hot path (issue 13).

Measured per GET /search through Django's WSGI handler (bench/request_path.py): the whole stock
stack cost ~0.34 ms of CPU, ~0.55 ms with the handler, of a page-cache hit's ~1.1 ms. Two parts
were work repeated on every request for nothing:

- `ContentSecurityPolicyMiddleware`: django-csp rebuilds the policy string from the settings
  twice per response (policy and report-only; ~0.11 ms). It is the same string every time unless
  the view asked for a nonce or set per-response overrides (`csp_update`, `csp_replace`,
  `csp_exempt`...); those requests still go through django-csp's own code.
- `SessionMiddleware`, `AuthenticationMiddleware`, `MessageMiddleware`: on an anonymous public
  read (GET/HEAD, no session cookie, outside the admin) nothing reads the session, the user or
  the messages (~0.09 ms together: a session store, a lazy user, cookie and session message
  storages). There these subclasses step aside and set `request.user` to AnonymousUser, which is
  what the lazy user would have been without a session cookie. Everything under the admin prefix,
  every POST (photo search, admin login) and every request carrying a session cookie gets the
  stock behaviour, so admin sessions, messages and django-axes' lockout are unchanged.
"""

from __future__ import annotations

import functools

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as StockAuthentication
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware as StockMessages
from django.contrib.sessions.middleware import SessionMiddleware as StockSessions
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest

# Where the admin is mounted (meepo/urls.py): its pages always get sessions and messages.
ADMIN_PATH = "/admin/"
# Per-response overrides django-csp's decorators set: such a response is built by django-csp.
_OVERRIDES = (
    "_csp_config", "_csp_update", "_csp_replace",
    "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro",
)  # fmt: skip
# Responses django-csp leaves alone under DEBUG (its debug pages).
_DEBUG_EXEMPT = (404, 500)


@functools.cache
def _static_policies() -> tuple[tuple[str, str, tuple[str, ...], str], ...]:
    """(header, policy, excluded path prefixes, exemption attribute) for the policy and the
    report-only policy as the settings define them, empty policies left out."""
    out = []
    for header, setting, exempt, report_only in (
        (HEADER, "CONTENT_SECURITY_POLICY", "_csp_exempt", False),
        (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", "_csp_exempt_ro", True),
    ):
        policy = build_policy(report_only=report_only)
        prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
        if policy:
            out.append((header, policy, tuple(prefixes), exempt))
    return tuple(out)


@receiver(setting_changed)
def _forget_policies(*, setting: str, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _static_policies.cache_clear()


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware with the settings' policy strings built once per process."""

    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or any(
            hasattr(response, name) for name in _OVERRIDES
        ):
            return super().process_response(request, response)
        if response.status_code in _DEBUG_EXEMPT and settings.DEBUG:
            return response
        for header, policy, prefixes, exempt in _static_policies():
            if (
                header not in response
                and getattr(response, exempt, False) is False
                and not request.path_info.startswith(prefixes)
            ):
                response[header] = policy
        # As django-csp: a nonce asked for after the header was written is an error, not a
        # nonce missing from the policy.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


def is_public_read(request: HttpRequest) -> bool:
    """An anonymous GET/HEAD outside the admin: nothing there reads sessions or messages."""
    return (
        request.method in ("GET", "HEAD")
        and not request.path_info.startswith(ADMIN_PATH)
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
    )


class SessionMiddleware(StockSessions):
    """Django's, except on public reads (no session is read, so none is created)."""

    def __call__(self, request):
        if is_public_read(request):
            return self.get_response(request)
        return super().__call__(request)


class AuthenticationMiddleware(StockAuthentication):
    """Django's, except on public reads: there the user is anonymous without a session lookup."""

    def __call__(self, request):
        if is_public_read(request):
            request.user = AnonymousUser()
            return self.get_response(request)
        return super().__call__(request)


class MessageMiddleware(StockMessages):
    """Django's, except on public reads (no page there shows or adds messages)."""

    def __call__(self, request):
        if is_public_read(request):
            return self.get_response(request)
        return super().__call__(request)
