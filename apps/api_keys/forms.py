from __future__ import annotations

from django import forms

from apps.api_keys.selectors import KeyProviderOption, key_field_union
from apps.providers.base import KeyField

# a pasted or uploaded credential document (a service-account JSON) is read up to this size
MAX_UPLOAD_BYTES = 64 * 1024


class _NoValueTextarea(forms.Textarea):
    """A textarea that never sends its value back (a pasted secret is not re-shown with errors)."""

    def format_value(self, value):
        return None


def _form_field(field: KeyField, providers: tuple[str, ...]) -> forms.Field:
    common = {"label": field.label, "required": False, "help_text": field.help, "max_length": field.max_length}
    attrs = {"autocomplete": "off", "spellcheck": "false"}
    if field.kind == "choice":
        return forms.ChoiceField(
            label=field.label, required=False, help_text=field.help, choices=[("", "—"), *field.choices]
        )
    if field.kind == "textarea":
        widget = _NoValueTextarea(attrs={**attrs, "rows": 4}) if field.secret else forms.Textarea(attrs={"rows": 4})
        return forms.CharField(widget=widget, strip=True, **common)
    if field.secret:
        # render_value=False: a submitted key is never sent back, not even to re-show a form with errors
        return forms.CharField(widget=forms.PasswordInput(render_value=False, attrs=attrs), **common)
    return forms.CharField(widget=forms.TextInput(attrs=attrs), **common)


class ProviderKeyForm(forms.Form):
    """The key form, derived from the providers' declared credential fields: one input per field
    name (shared by the providers that take it), plus a file input for each document field (a
    service-account JSON can be uploaded instead of pasted)."""

    provider = forms.ChoiceField()
    label = forms.CharField(max_length=100, required=False, help_text="Optional, to tell keys apart.")

    def __init__(self, *args, options: list[KeyProviderOption], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(o.slug, o.label) for o in options]
        self.key_uses = key_field_union(options)
        self.document_fields: list[str] = []
        for use in self.key_uses:
            self.fields[use.field.name] = _form_field(use.field, use.providers)
            if use.field.kind == "textarea":
                name = f"{use.field.name}_file"
                self.fields[name] = forms.FileField(label=f"or upload the {use.field.label.lower()}", required=False)
                self.document_fields.append(use.field.name)
        self.fields["make_default"] = forms.BooleanField(required=False, label="Use it by default for this provider")

    def clean(self):
        cleaned = super().clean()
        for name in self.document_fields:
            upload = cleaned.pop(f"{name}_file", None)
            if upload is None:
                continue
            if upload.size > MAX_UPLOAD_BYTES:
                self.add_error(f"{name}_file", f"The file is larger than {MAX_UPLOAD_BYTES // 1024} KB.")
                continue
            try:
                cleaned[name] = upload.read().decode("utf-8").strip()
            except UnicodeDecodeError:
                self.add_error(f"{name}_file", "The file is not UTF-8 text.")
        return cleaned

    def credential_fields(self) -> dict[str, str]:
        """The credential fields as ``provider_key_create`` takes them."""
        return {use.field.name: self.cleaned_data.get(use.field.name) or "" for use in self.key_uses}

    def field_rows(self):
        """``(bound field, upload field or None, use)`` per credential field, for the template."""
        for use in self.key_uses:
            upload = self[f"{use.field.name}_file"] if use.field.name in self.document_fields else None
            yield self[use.field.name], upload, use


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “CI” or “laptop”.")
