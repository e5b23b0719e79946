from django.apps import AppConfig


class GrantsConfig(AppConfig):
    name = "grants"

    def ready(self) -> None:
        from anymail.signals import inbound

        from grants.inbound_email import grant_email_from_provider

        inbound.connect(grant_email_from_provider, dispatch_uid="grants.grant_email_from_provider")
