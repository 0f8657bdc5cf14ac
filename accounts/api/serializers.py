from rest_framework import serializers

from accounts.models import User


class MeSerializer(serializers.ModelSerializer):
    context_id = serializers.UUIDField(source="uuid", read_only=True)

    class Meta:
        model = User
        fields = ("id", "email", "context_id", "date_joined")
