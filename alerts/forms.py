"""The channel form, shared by the dashboard and the admin. The signing secret is write-only."""

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from alerts import outbound, signing
from alerts.models import Channel

MAX_EMAIL_ADDRESSES = 10


def email_targets_problem(target: str) -> str:
    """Why `target` is not a list of email addresses, or ""."""
    addresses = [address.strip() for address in target.split(",") if address.strip()]
    if not addresses:
        return "Enter at least one email address."
    if len(addresses) > MAX_EMAIL_ADDRESSES:
        return f"Enter at most {MAX_EMAIL_ADDRESSES} addresses; use a mailing list for more."
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            return f"{address} is not an email address."
    return ""


class ChannelForm(forms.ModelForm):
    target = forms.CharField(
        max_length=outbound.MAX_URL_LENGTH,
        help_text="Email: addresses, comma-separated. Slack: the incoming-webhook URL. Signed webhook: the "
        "URL to POST to (https).",
    )
    new_secret = forms.CharField(
        label="Signing secret",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signed webhooks only. Write-only: leave blank to keep the current one; on the dashboard, "
        "blank for a new channel makes one and shows it once.",
    )

    class Meta:
        model = Channel
        fields = ["partner", "kind", "name", "target", "is_active"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        kind, target = cleaned.get("kind"), str(cleaned.get("target") or "")
        if kind == Channel.Kind.EMAIL and target:
            if email_problem := email_targets_problem(target):
                self.add_error("target", email_problem)
        elif kind and target and (url_problem := outbound.url_refusal(target)):
            self.add_error("target", url_problem)
        secret = str(cleaned.get("new_secret") or "")
        if secret and kind != Channel.Kind.WEBHOOK:
            self.add_error("new_secret", "Only signed webhooks have a signing secret.")
        elif secret and (secret_problem := signing.secret_refusal(secret)):
            self.add_error("new_secret", secret_problem)
        return cleaned

    def save(self, commit: bool = True) -> Channel:
        channel: Channel = super().save(commit=False)
        if self.cleaned_data.get("new_secret"):
            channel.secret = self.cleaned_data["new_secret"]
        if commit:
            channel.save()
        return channel


class AdminChannelForm(ChannelForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # The admin cannot show a made secret once the way the dashboard does, so it takes one.
        if cleaned.get("kind") == Channel.Kind.WEBHOOK and not (cleaned.get("new_secret") or self.instance.secret):
            self.add_error("new_secret", "A signed webhook needs a signing secret (or create it on the dashboard).")
        return cleaned
