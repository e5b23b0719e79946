"""The partner and API key forms. Secret fields are write-only: never rendered back, blank means "keep"."""

from typing import Any, Optional

from django import forms

from grants import rg_url
from grants.audit import PARTNER_AUDITED_FIELDS, secret_fingerprint
from grants.models import PARTNER_NAME_TAKEN, Partner

WRITE_ONLY_HELP = "Write-only: it is never shown again. Re-enter it if the form comes back with errors."


def _secret_input() -> forms.PasswordInput:
    # render_value=False: a bound form with errors must not echo a secret back into the page.
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


def _api_url_field() -> forms.URLField:
    return forms.URLField(
        label="RG API URL",
        required=False,
        assume_scheme="https",
        validators=[rg_url.validate],
        help_text="Leave blank to use the portal's default Real Geeks URL. The RG password is sent to this URL, "
        "so it must be a host in REALGEEKS_ALLOWED_HOSTS.",
    )


def _name_unique(name: str, partner: Optional[Partner] = None) -> str:
    """The name, unless another partner has it (ignoring case, as the database's constraint does)."""
    others = Partner.objects.filter(name__iexact=name)
    if partner is not None and partner.pk is not None:
        others = others.exclude(pk=partner.pk)
    if others.exists():
        raise forms.ValidationError(PARTNER_NAME_TAKEN, code="name_taken")
    return name


class PartnerCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    rg_username = forms.CharField(label="RG username", max_length=200)
    rg_password = forms.CharField(label="RG password", strip=False, widget=_secret_input(), help_text=WRITE_ONLY_HELP)
    webhook_secret = forms.CharField(
        label="Webhook secret",
        widget=_secret_input(),
        help_text="The secret of the partner's RG Destination, used to verify callbacks. " + WRITE_ONLY_HELP,
    )
    rg_partner_id = forms.CharField(label="RG partner id", max_length=200, required=False)
    rg_company_id = forms.CharField(
        label="RG company id", max_length=200, required=False, help_text="From the partner's RG grant page URL."
    )
    rg_api_url = _api_url_field()

    def clean_name(self) -> str:
        return _name_unique(self.cleaned_data["name"])


class PartnerEditForm(forms.ModelForm):
    """Edits a partner. The RG API URL is only a superuser's to change (`may_change_api_url`);
    for anyone else the field is left out, so a posted value is ignored."""

    rg_api_url = _api_url_field()
    rg_password = forms.CharField(
        label="New RG password",
        required=False,
        strip=False,
        widget=_secret_input(),
        help_text="Leave blank to keep the current password. " + WRITE_ONLY_HELP,
    )
    new_webhook_secret = forms.CharField(
        label="Add a webhook secret",
        required=False,
        widget=_secret_input(),
        help_text="Added in front: new callbacks verify with it, the older ones keep working until removed.",
    )
    remove_webhook_secrets = forms.MultipleChoiceField(
        label="Remove webhook secrets",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Shown by fingerprint, newest first. Remove an old secret once RG signs with the new one.",
    )

    class Meta:
        model = Partner
        # The plain fields grants.services.partner_edit saves, but the slug: the dashboard's
        # links carry it.
        fields = [name for name in PARTNER_AUDITED_FIELDS if name != "slug"]
        labels = {
            "rg_username": "RG username",
            "rg_partner_id": "RG partner id",
            "rg_company_id": "RG company id",
            "rg_api_url": "RG API URL",
            "grant_email_address": "Grant email address",
        }

    def __init__(self, *args: Any, may_change_api_url: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not may_change_api_url:
            del self.fields["rg_api_url"]
        self.current_secrets: list[str] = self.instance.webhook_secrets
        field = self.fields["remove_webhook_secrets"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [
            (secret_fingerprint(secret), f"{secret_fingerprint(secret)}{' (newest)' if n == 0 else ''}")
            for n, secret in enumerate(self.current_secrets)
        ]

    def clean_name(self) -> str:
        return _name_unique(self.cleaned_data["name"], self.instance)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "rg_api_url" in self.changed_data and not cleaned.get("rg_password"):
            self.add_error("rg_password", rg_url.URL_CHANGE_REFUSED)
        new = cleaned.get("new_webhook_secret") or ""
        removed = set(cleaned.get("remove_webhook_secrets") or [])
        if new and new in self.current_secrets:
            self.add_error("new_webhook_secret", "This secret is already in the list.")
        kept = [secret for secret in self.current_secrets if secret_fingerprint(secret) not in removed]
        self.webhook_secrets_after = ([new] if new else []) + kept
        if not self.webhook_secrets_after:
            self.add_error(
                "remove_webhook_secrets",
                "Keep at least one webhook secret: without one no callback can be verified. "
                "Add the new secret before removing the last old one.",
            )
        return cleaned

    def edit(self) -> dict[str, Any]:
        """The valid form's edit, as grants.services.partner_edit takes it."""
        return {
            "changes": {name: self.cleaned_data[name] for name in self.Meta.fields if name in self.fields},
            "rg_password": self.cleaned_data.get("rg_password") or "",
            "webhook_secrets": self.webhook_secrets_after,
        }


class ApiKeyIssueForm(forms.Form):
    label = forms.CharField(
        max_length=200, required=False, help_text="Who or what will use the key, e.g. “CRM production”."
    )
