"""Input and output shapes of the algorithms API."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from algorithms.models import Algorithm, Implementation, ImplementationFile, ProblemClass, Sdk, Visibility
from algorithms.services import MAX_TAGS
from planqk_portal.api_fields import QuerySerializer, StrictCharField, StrictUUIDField
from planqk_portal.errors import ApplicationError


class AlgorithmQuerySerializer(QuerySerializer):
    """The catalogue's filters: an unknown problem class is a 400, not an empty page."""

    search = serializers.CharField(required=False, allow_blank=True, help_text="In name, summary and description")
    problem_class = serializers.ChoiceField(choices=ProblemClass.choices, required=False)
    tag = serializers.CharField(required=False, allow_blank=True)


class AlgorithmSerializer(serializers.ModelSerializer):
    tags = serializers.SerializerMethodField()
    author = serializers.SerializerMethodField()
    implementation_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Algorithm
        fields = (
            "id",
            "name",
            "summary",
            "description",
            "problem_class",
            "tags",
            "author",
            "implementation_count",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, obj: Algorithm) -> list[str]:
        return [tag.name for tag in obj.tags.all()]

    @extend_schema_field(serializers.EmailField(allow_null=True))
    def get_author(self, obj: Algorithm) -> str | None:
        return obj.author.email if obj.author_id else None


class _TagValidator(RegexValidator):
    """A tag as the schema says it (the regex is its ``pattern``): what ``algorithms.services.parse_tags``
    turns into a valid tag (it lowers the case and makes spaces dashes). Refused with the same code."""

    regex = r"^[A-Za-z0-9][A-Za-z0-9+#. -]*$"

    def __call__(self, value: Any) -> None:
        if not self.regex.search(str(value)):
            raise ApplicationError(
                f"{value!r} cannot be a tag: use at most 40 letters, digits and - . + #.", code="algorithm:bad-tag"
            )


def _tags(**kwargs: Any) -> serializers.ListField:
    """At most ``MAX_TAGS`` tags of at most 40 characters each (as sent: no whitespace trimmed)."""
    tag = StrictCharField(max_length=40, trim_whitespace=False, validators=[_TagValidator()])
    return serializers.ListField(child=tag, max_length=MAX_TAGS, **kwargs)


class AlgorithmWriteSerializer(serializers.Serializer):
    name = StrictCharField(max_length=120)
    summary = StrictCharField(max_length=300)
    description = StrictCharField(required=False, allow_blank=True, default="")
    problem_class = serializers.ChoiceField(choices=ProblemClass.choices, default=ProblemClass.OTHER)
    tags = _tags(required=False, default=list)


class AlgorithmUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=120, required=False)
    summary = StrictCharField(max_length=300, required=False)
    description = StrictCharField(required=False, allow_blank=True)
    problem_class = serializers.ChoiceField(choices=ProblemClass.choices, required=False)
    tags = _tags(required=False)


class ImplementationFileSerializer(serializers.ModelSerializer):
    is_runnable = serializers.BooleanField(read_only=True)

    class Meta:
        model = ImplementationFile
        fields = (
            "id",
            "version",
            "filename",
            "source",
            "status",
            "size",
            "sha256",
            "has_api_spec",
            "git_url",
            "git_ref",
            "git_commit",
            "error",
            "error_code",
            "is_runnable",
            "created_at",
        )
        read_only_fields = fields


class ImplementationSerializer(serializers.ModelSerializer):
    algorithm_id = serializers.UUIDField(read_only=True)
    algorithm_name = serializers.CharField(source="algorithm.name", read_only=True)
    owner = serializers.EmailField(source="owner.email", read_only=True)
    shared_with = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField()

    class Meta:
        model = Implementation
        fields = (
            "id",
            "algorithm_id",
            "algorithm_name",
            "name",
            "description",
            "sdk",
            "backend",
            "license",
            "visibility",
            "owner",
            "shared_with",
            "files",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.EmailField()))
    def get_shared_with(self, obj: Implementation) -> list[str]:
        # Whom it is shared with is the owner's business only.
        request = self.context.get("request")
        if request is None or request.user.pk != obj.owner_id:
            return []
        return [share.user.email for share in obj.shares.select_related("user")]

    @extend_schema_field(ImplementationFileSerializer(many=True))
    def get_files(self, obj: Implementation) -> list[dict[str, Any]]:
        return ImplementationFileSerializer(obj.files.order_by("-version"), many=True).data


class ImplementationWriteSerializer(serializers.Serializer):
    algorithm_id = StrictUUIDField()
    name = StrictCharField(max_length=120)
    description = StrictCharField(required=False, allow_blank=True, default="")
    sdk = serializers.ChoiceField(choices=Sdk.choices, default=Sdk.PYTHON)
    backend = StrictCharField(required=False, allow_blank=True, default="", max_length=120)
    license = StrictCharField(required=False, allow_blank=True, default="", max_length=64)
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PRIVATE)
    shared_with = serializers.ListField(child=serializers.EmailField(), required=False, default=list)


class ImplementationUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=120, required=False)
    description = StrictCharField(required=False, allow_blank=True)
    sdk = serializers.ChoiceField(choices=Sdk.choices, required=False)
    backend = StrictCharField(required=False, allow_blank=True, max_length=120)
    license = StrictCharField(required=False, allow_blank=True, max_length=64)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)
    shared_with = serializers.ListField(child=serializers.EmailField(), required=False)


class ImplementationFileUploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class GitImportSerializer(serializers.Serializer):
    url = StrictCharField(max_length=500)
    ref = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
