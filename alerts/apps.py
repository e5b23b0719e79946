from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        # Connects the worker-heartbeat watchdog to Celery beat's start-up; it runs in beat only.
        from alerts import watchdog  # noqa: F401
