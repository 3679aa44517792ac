"""The example site's URLs, with (F) (benchmarks/floor.py) first: its request should not
pay for trying the site's other patterns (every other path pays one failed prefix match)."""

from __future__ import annotations

from django.urls import path

from project.urls import urlpatterns as site_urlpatterns

from .floor import CodeVerifyFloorView

urlpatterns = [
    path("bench/floor/code-verify", CodeVerifyFloorView.as_view(), name="bench-floor-code-verify"),
    *site_urlpatterns,
]
