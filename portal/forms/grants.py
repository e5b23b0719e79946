"""Forms for the callbacks and grant-email pages: list filters, resolve, dismiss and paste."""

import re
import uuid
from typing import Any, Optional

from django import forms
from django.db.models import QuerySet

from grants.models import GrantEmail, Partner, WebhookEvent
from grants.parsing import parse_grant_email

UUID_EXAMPLE = "5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70"
NOT_A_UUID = (
    f"That is not a site UUID. It looks like {UUID_EXAMPLE} (32 hexadecimal digits, usually in groups of 8-4-4-4-12)."
)
# Separators staff use when they copy several UUIDs at once: new lines, commas, semicolons, spaces.
_UUID_SEPARATORS = re.compile(r"[\s,;]+")
# Far more than one email grants; a bound on what one form submission may do.
MAX_RESOLVE_SITES = 50
# A pasted email is text from a clipboard; a whole message with its HTML part fits comfortably.
MAX_PASTE_CHARS = 500_000
NO_PARTNER = "none"


def _partner_choices(partners: QuerySet[Partner], empty_label: str) -> list[tuple[str, str]]:
    return [("", empty_label), *((p.slug, p.name) for p in partners)]


class CallbackFilterForm(forms.Form):
    """GET filters of the callbacks list; every field optional, a bad site UUID says so."""

    partner = forms.ChoiceField(required=False)
    action = forms.CharField(required=False, max_length=64)
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *WebhookEvent.State.choices])
    site = forms.UUIDField(
        label="Site UUID",
        required=False,
        error_messages={"invalid": NOT_A_UUID},
        widget=forms.TextInput(attrs={"placeholder": UUID_EXAMPLE, "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, partners: QuerySet[Partner], actions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        partner_field = self.fields["partner"]
        assert isinstance(partner_field, forms.ChoiceField)
        partner_field.choices = _partner_choices(partners, "All partners")
        self.fields["action"].widget = forms.Select(choices=[("", "Any action"), *((a, a) for a in actions)])


class GrantEmailFilterForm(forms.Form):
    """GET filters of the grant-email list. Superusers may also pick the unmatched messages."""

    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *GrantEmail.Status.choices])
    partner = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, partners: QuerySet[Partner], include_unmatched: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = _partner_choices(partners, "All partners")
        if include_unmatched:
            choices.append((NO_PARTNER, "Not matched to a partner"))
        partner_field = self.fields["partner"]
        assert isinstance(partner_field, forms.ChoiceField)
        partner_field.choices = choices


class SiteUuidsField(forms.CharField):
    """One or more site UUIDs, one per line (or separated by commas or spaces), in typed order."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "placeholder": UUID_EXAMPLE})

    def to_python(self, value: Any) -> list[uuid.UUID]:  # type: ignore[override]
        text = super().to_python(value) or ""
        tokens = [token for token in _UUID_SEPARATORS.split(text) if token]
        bad = [token for token in tokens if not _is_uuid(token)]
        if bad:
            shown = ", ".join(f"“{token[:60]}”" for token in bad[:5])
            raise forms.ValidationError(
                f"Not a site UUID: {shown}. A site UUID looks like {UUID_EXAMPLE} "
                "(32 hexadecimal digits, usually in groups of 8-4-4-4-12)."
            )
        values = list(dict.fromkeys(uuid.UUID(token) for token in tokens))
        if len(values) > MAX_RESOLVE_SITES:
            raise forms.ValidationError(f"At most {MAX_RESOLVE_SITES} sites at once.")
        return values


def _is_uuid(token: str) -> bool:
    try:
        uuid.UUID(token)
    except ValueError:
        return False
    return True


class GrantEmailResolveForm(forms.Form):
    partner = forms.ModelChoiceField(
        queryset=Partner.objects.none(),
        to_field_name="slug",
        empty_label="Choose the partner",
        error_messages={
            "required": "Choose the partner this message is for.",
            "invalid_choice": "Choose one of the partners in the list.",
        },
    )
    site_uuids = SiteUuidsField(
        label="Site UUIDs",
        error_messages={"required": "Enter at least one site UUID, or dismiss the message."},
        help_text="One per line. Copy them from the message below or ask the client.",
    )
    name = forms.CharField(
        label="Site name", max_length=200, required=False, help_text="Given to the sites above that have no name yet."
    )
    note = forms.CharField(max_length=1000, required=False, help_text="How you know (kept in the audit trail).")

    def __init__(self, *args: Any, partners: QuerySet[Partner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        partner_field = self.fields["partner"]
        assert isinstance(partner_field, forms.ModelChoiceField)
        partner_field.queryset = partners


class GrantEmailDismissForm(forms.Form):
    reason = forms.CharField(
        max_length=500, required=False, help_text="Why it grants nothing, e.g. “a duplicate of the 3 May email”."
    )


# A plus-address names a partner by its slug: grants+acme-leads@... (as grants.emails reads it).
_PLUS_ADDRESS = re.compile(r"^[^@+]+\+([^@]+)@")
CONFIRM_PARTNER_HELP = "The recipient names another partner. Tick this only if you know the message is for this one."


def addressed_partner(text: str) -> Optional[tuple[str, Partner]]:
    """The first recipient of the pasted message (its To, Cc... headers) naming a partner, by its
    grant email address or by the slug in its plus-address, with that partner; None if none does."""
    recipients = parse_grant_email(text.replace("\r\n", "\n").lstrip().encode("utf-8", "replace")).recipients
    for address in recipients:
        partner = Partner.objects.filter(grant_email_address__iexact=address).exclude(grant_email_address="").first()
        match = _PLUS_ADDRESS.match(address)
        if partner is None and match:
            partner = Partner.objects.filter(slug=match.group(1)).first()
        if partner is not None:
            return address, partner
    return None


class GrantEmailPasteForm(forms.Form):
    text = forms.CharField(
        label="Email text",
        strip=False,
        max_length=MAX_PASTE_CHARS,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
        error_messages={"required": "Paste the email, or at least the part that names the site and its UUID."},
        help_text="The whole message with its headers, or just the part naming the site and its UUID.",
    )
    partner = forms.ModelChoiceField(
        queryset=Partner.objects.none(),
        to_field_name="slug",
        required=False,
        empty_label="Detect it from the message",
        error_messages={"invalid_choice": "Choose one of the partners in the list."},
        help_text="Detected from the message's recipient or grant page link when left to detect.",
    )

    confirm_partner = forms.BooleanField(
        label="Yes, paste it for the chosen partner", required=False, help_text=CONFIRM_PARTNER_HELP
    )

    def __init__(self, *args: Any, partners: QuerySet[Partner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        partner_field = self.fields["partner"]
        assert isinstance(partner_field, forms.ModelChoiceField)
        partner_field.queryset = partners
        self.partners = partners
        # Set by clean() when the message's recipient names another partner than the chosen one.
        self.partner_mismatch = False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        chosen, text = cleaned.get("partner"), cleaned.get("text")
        if chosen is None or not text or cleaned.get("confirm_partner"):
            return cleaned
        addressed = addressed_partner(text)
        if addressed is not None and addressed[1].pk != chosen.pk:
            address, other = addressed
            # Staff of one partner are not told another partner's name.
            named = f"the partner “{other.name}”" if self.partners.filter(pk=other.pk).exists() else "another partner"
            self.partner_mismatch = True
            self.add_error(
                "partner",
                f"The message is addressed to {address}, which names {named}, not “{chosen.name}”. "
                "Choose the partner it is for, or confirm below that it is for the chosen one.",
            )
        return cleaned

    def clean_text(self) -> str:
        text: str = self.cleaned_data["text"]
        if not text.strip():
            raise forms.ValidationError(self.fields["text"].error_messages["required"])
        return text

    def chosen_partner(self) -> Optional[Partner]:
        partner: Optional[Partner] = self.cleaned_data.get("partner")
        return partner
