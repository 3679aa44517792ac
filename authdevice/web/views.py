"""Sign-in pages. (Being written: every view answers 404 until then.)"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


def _todo(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    raise Http404


signin = code = resend = link = done = signout = hosted_app = hosted_cancel = _todo
