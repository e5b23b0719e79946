from django.urls import URLPattern, URLResolver, path

from grants import inbound_email, webhooks

app_name = "grants"
urlpatterns: list[URLPattern | URLResolver] = [
    path("webhooks/realgeeks/<slug:partner_slug>/", webhooks.realgeeks_destination, name="realgeeks_destination"),
    # The inbound-email webhook of the provider named by GRANT_EMAIL_INBOUND_ESP (via anymail),
    # e.g. /webhooks/grant-email/postmark/inbound/; any other provider name is a 404.
    path("webhooks/grant-email/<str:esp>/<str:kind>/", inbound_email.inbound_webhook, name="grant_email_inbound"),
]
