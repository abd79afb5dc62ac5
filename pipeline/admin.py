"""Admin: the distributed pipeline's task failures (read-only), with the live queue status above.

The change list shows what `manage.py pipeline_status` prints: queue depths, unacknowledged
tasks, the cycle in flight and the Redis locks held (pipeline.distributed.status).
"""

from django.contrib import admin

from pipeline.models import TaskFailure


@admin.register(TaskFailure)
class TaskFailureAdmin(admin.ModelAdmin):
    list_display = ["created_at", "task_name", "worker", "retries", "short_error"]
    list_filter = ["task_name"]
    search_fields = ["task_id", "error", "arguments"]
    readonly_fields = ["task_name", "task_id", "arguments", "error", "worker", "retries"]
    date_hierarchy = "created_at"

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.error[:120]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        from pipeline.distributed.status import pipeline_status

        context = {**(extra_context or {}), "pipeline_status": pipeline_status(failures=0)}
        return super().changelist_view(request, extra_context=context)
