"""Granting and revoking a site by hand."""

from django import forms


class SiteGrantForm(forms.Form):
    site_uuid = forms.UUIDField(
        label="Site UUID",
        error_messages={
            "required": "Enter the site's UUID.",
            "invalid": "That is not a site UUID. It looks like 5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70 "
            "(32 hexadecimal digits, usually in groups of 8-4-4-4-12).",
        },
        widget=forms.TextInput(attrs={"placeholder": "5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70", "spellcheck": "false"}),
    )
    name = forms.CharField(max_length=200, required=False, help_text="The site's name, if you know it.")
    note = forms.CharField(
        max_length=1000, required=False, help_text="Why you are granting it by hand (kept in the history)."
    )


class SiteRevokeForm(forms.Form):
    note = forms.CharField(max_length=1000, required=False, help_text="Why (kept in the history).")
