from django.contrib import admin

from .models import WorkerHost
from .selectors import host_state


@admin.register(WorkerHost)
class WorkerHostAdmin(admin.ModelAdmin):
    """Read-only: the rows are the workers' heartbeats, written by the workers alone."""

    list_display = ("name", "state", "last_seen", "started_at", "runtimes", "queues", "capacity", "housekeeping_at")
    readonly_fields = (
        "name",
        "last_seen",
        "started_at",
        "runtimes",
        "queues",
        "capacity",
        "housekeeping_sent_at",
        "housekeeping_at",
        "housekeeping",
        "warm",
    )

    @admin.display(description="state")
    def state(self, obj: WorkerHost) -> str:
        return str(host_state(obj.name))

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
