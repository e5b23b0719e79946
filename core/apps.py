from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app uses: the audit trail, access checks, admin base classes, health."""

    name = "core"
