from rest_framework import serializers
from rest_framework.response import Response

from apps.core.api import OrgScopedAPIView


class MeApi(OrgScopedAPIView):
    """Who this token acts as: the user and the organization it is bound to."""

    class OutputSerializer(serializers.Serializer):
        user = serializers.EmailField()
        organization = serializers.CharField()
        organization_name = serializers.CharField()
        token = serializers.CharField()

    serializer_class = OutputSerializer

    def get(self, request):
        token = request.auth
        data = {
            "user": request.user.email,
            "organization": token.organization.slug,
            "organization_name": token.organization.name,
            "token": token.public_id,
        }
        return Response(self.OutputSerializer(data).data)
