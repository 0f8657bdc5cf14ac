"""Input and output shapes of the data pool REST API."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from datapools.models import DataFile, DataPool, DataPoolShare, DataSourceDescriptor, Permission, Visibility
from datapools.selectors import Access
from planqk_portal.api_fields import StrictCharField, StrictUUIDField

ACCESS_CHOICES = [Access.OWNER.name, Access.WRITE.name, Access.READ.name]


class DataPoolErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable error id, e.g. `datapool:forbidden`.")
    detail = serializers.CharField(help_text="What went wrong, for people.")


class ReferenceSerializer(serializers.Serializer):
    """The object to pass as `dataRef` or `paramsRef`."""

    dataPoolId = serializers.UUIDField()  # the contract spells them in camelCase
    dataSourceDescriptorId = serializers.UUIDField()
    fileId = serializers.UUIDField()


class DataPoolSerializer(serializers.ModelSerializer):
    owner = serializers.EmailField(source="owner.email", read_only=True)
    access = serializers.SerializerMethodField()
    file_count = serializers.SerializerMethodField()
    default_data_source_id = serializers.SerializerMethodField()

    class Meta:
        model = DataPool
        fields = (
            "id",
            "name",
            "description",
            "visibility",
            "owner",
            "access",
            "file_count",
            "default_data_source_id",
            "created_at",
            "updated_at",
        )

    @extend_schema_field(serializers.ChoiceField(choices=ACCESS_CHOICES))
    def get_access(self, pool: DataPool) -> str:
        return Access(getattr(pool, "access", Access.NONE)).name

    def get_file_count(self, pool: DataPool) -> int:
        count = getattr(pool, "file_count", None)
        return count if count is not None else pool.files.count()

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_default_data_source_id(self, pool: DataPool) -> Any:
        if hasattr(pool, "default_source_id"):
            return pool.default_source_id
        return DataSourceDescriptor.objects.filter(pool=pool, is_default=True).values_list("pk", flat=True).first()


class DataPoolCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=120)
    description = StrictCharField(max_length=5000, required=False, allow_blank=True, default="")
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False, default=Visibility.PRIVATE)


class DataPoolUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=120, required=False)
    description = StrictCharField(max_length=5000, required=False, allow_blank=True)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


class DataSourceSerializer(serializers.ModelSerializer):
    file_count = serializers.SerializerMethodField()

    class Meta:
        model = DataSourceDescriptor
        fields = ("id", "name", "is_default", "file_count", "created_at")

    def get_file_count(self, source: DataSourceDescriptor) -> int:
        count = getattr(source, "file_count", None)
        return count if count is not None else source.files.count()


class DataSourceCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=120)


class DataFileSerializer(serializers.ModelSerializer):
    data_source_id = serializers.UUIDField(source="descriptor_id", read_only=True)
    data_source_name = serializers.CharField(source="descriptor.name", read_only=True)
    reference = ReferenceSerializer(read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = DataFile
        fields = (
            "id",
            "name",
            "size",
            "content_type",
            "sha256",
            "data_source_id",
            "data_source_name",
            "reference",
            "download_url",
            "created_at",
        )

    def get_download_url(self, datafile: DataFile) -> str:
        path = reverse("api-datapool-file-download", args=[datafile.pool_id, datafile.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class DataFileUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, help_text="The content (multipart).")
    data_source_id = StrictUUIDField(
        required=False, allow_null=True, help_text="Target data source; the pool's default one when left out."
    )
    name = StrictCharField(
        max_length=255, required=False, allow_blank=True, help_text="File name to keep; the upload's name otherwise."
    )


class ShareSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="address", read_only=True)

    class Meta:
        model = DataPoolShare
        fields = ("id", "email", "permission", "created_at")


class ShareCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    permission = serializers.ChoiceField(choices=Permission.choices, default=Permission.READ)
