from typing import Any

from django.contrib import admin

from hosts.routing import may_pin_queue

from .models import PricingPlan, Service, ServiceVersion


class ServiceVersionInline(admin.TabularInline):
    model = ServiceVersion
    fields = ("version", "status", "runtime", "build_error_code", "created_at", "unpublished_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "lifecycle", "source", "quantum_backend", "queue", "created_at", "deleted_at")
    list_filter = ("lifecycle", "source", "quantum_backend", "queue")
    search_fields = ("name", "title", "owner__email")
    raw_id_fields = ("owner", "published_version")
    inlines = [ServiceVersionInline]

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        # Deleting goes through services.services.service_delete (the portal, the REST API): it
        # refuses while subscribed, keeps billing history and removes builds on every host. A row
        # deleted here would skip all of that.
        return False

    def get_readonly_fields(self, request: Any, obj: Any = None) -> Any:
        # The queue pin is the operators' (hosts.routing.may_pin_queue), whoever else sees this page.
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if may_pin_queue(request.user) else (*fields, "queue")


@admin.register(ServiceVersion)
class ServiceVersionAdmin(admin.ModelAdmin):
    list_display = ("service", "version", "status", "runtime", "build_started_at", "build_ended_at")
    list_filter = ("status", "runtime")
    search_fields = ("service__name", "version")
    raw_id_fields = ("service", "created_by")
    readonly_fields = ("build_handle", "build_error", "build_error_code", "build_started_at", "build_ended_at")

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False  # as for services: only service_delete removes versions (and their builds)


@admin.register(PricingPlan)
class PricingPlanAdmin(admin.ModelAdmin):
    list_display = ("name", "service", "kind", "price_cents", "currency", "is_active")
    list_filter = ("kind", "is_active")
    raw_id_fields = ("service",)
