"""Admin for looking into pools; files are added through the pages or the API only (id-named storage)."""

from django.contrib import admin

from .models import DataFile, DataPool, DataPoolShare, DataSourceDescriptor


class DataPoolShareInline(admin.TabularInline):
    model = DataPoolShare
    extra = 0
    raw_id_fields = ("user",)


class DataSourceInline(admin.TabularInline):
    model = DataSourceDescriptor
    extra = 0
    readonly_fields = ("id", "is_default")


@admin.register(DataPool)
class DataPoolAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "visibility", "created_at")
    list_filter = ("visibility",)
    search_fields = ("name", "owner__email")
    raw_id_fields = ("owner",)
    inlines = (DataSourceInline, DataPoolShareInline)


@admin.register(DataFile)
class DataFileAdmin(admin.ModelAdmin):
    list_display = ("name", "pool", "descriptor", "size", "content_type", "created_at")
    search_fields = ("name", "pool__name")
    readonly_fields = ("id", "pool", "descriptor", "file", "size", "content_type", "sha256", "created_by", "created_at")

    def has_add_permission(self, request: object) -> bool:
        return False
