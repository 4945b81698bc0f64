from __future__ import annotations

from django import forms

from apps.api_keys.selectors import KeyProviderOption
from apps.api_keys.services import MAX_SECRET_LENGTH


def _secret_field(label: str, help_text: str = "") -> forms.CharField:
    # render_value=False: a submitted key is never sent back, not even to re-show a form with errors
    return forms.CharField(
        label=label,
        required=False,
        max_length=MAX_SECRET_LENGTH,
        help_text=help_text,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class ProviderKeyForm(forms.Form):
    provider = forms.ChoiceField()
    label = forms.CharField(max_length=100, required=False, help_text="Optional, to tell keys apart.")
    api_key = _secret_field("API key")
    access_key = _secret_field("Access key")
    secret_key = _secret_field("Secret key")
    make_default = forms.BooleanField(required=False, label="Use it by default for this provider")

    def __init__(self, *args, options: list[KeyProviderOption], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(o.slug, o.label) for o in options]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “CI” or “laptop”.")
