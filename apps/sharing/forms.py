from __future__ import annotations

from django import forms

from apps.sharing.services import expiry_choices


def _label(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


class ShareForm(forms.Form):
    """A new share link for one video: how long it lives and whether the page shows the prompt."""

    expires_in = forms.TypedChoiceField(coerce=int, label="Link works for")
    include_prompt = forms.BooleanField(required=False, label="Show the prompt on the page")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = expiry_choices()
        self.fields["expires_in"].choices = [(d, _label(d)) for d in choices]
        self.fields["expires_in"].initial = 7 if 7 in choices else choices[-1]
