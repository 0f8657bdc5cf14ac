from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .serializers import MeSerializer


class MeView(APIView):
    """Who the token (or session) belongs to."""

    @extend_schema(responses=MeSerializer, summary="The authenticated user")
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)
