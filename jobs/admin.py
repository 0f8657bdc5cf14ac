from django.contrib import admin

from .models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Read-only: jobs change only through the engine, so the admin is for looking."""

    list_display = ("id", "service", "owner", "status", "source", "created_at", "ended_at", "error_code")
    list_filter = ("status", "source", "runtime")
    search_fields = ("id", "service__name", "owner__email", "error_code")
    date_hierarchy = "created_at"
    list_select_related = ("service", "owner")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
