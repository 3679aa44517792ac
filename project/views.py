"""Two tiny API views of the example site: one public, one behind authdevice tokens.

They show how a site protects its own API, and the benchmark uses them as the bare DRF
baseline and the same view behind ``AccessTokenAuthentication``.
"""

from __future__ import annotations

from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from authdevice.api.authentication import AccessTokenAuthentication


class HelloView(APIView):
    authentication_classes: list[type] = []
    permission_classes: list[type] = []

    def get(self, request: Request) -> Response:
        return Response({"hello": "world"})


class MeView(APIView):
    authentication_classes = [AccessTokenAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({"hello": "world", "sub": request.user.public_id})
