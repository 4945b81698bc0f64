from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from apps.accounts.models import LINK_INVITATION_MAX_USES, Role

RETENTION_DAYS_MAX = 36_500  # a hundred years


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )


class SignupForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}))
    name = forms.CharField(max_length=150, required=False, label="Your name")
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), min_length=8)
    org_name = forms.CharField(max_length=100, label="Organization name", help_text="You can rename it later.")


class OrganizationCreateForm(forms.Form):
    name = forms.CharField(max_length=100, label="Organization name")


class InvitationForm(forms.Form):
    """An invitation by email address (only that account can accept), or, when ``anyone_with_link``
    is ticked, a link for anyone who has it, usable ``max_uses`` times."""

    email = forms.EmailField(
        required=False,
        label="Email (optional)",
        help_text="Only the account with this address can accept. Leave it empty only for a link anyone may use.",
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)
    anyone_with_link = forms.BooleanField(required=False, label="Anyone with the link may join")
    max_uses = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=LINK_INVITATION_MAX_USES,
        label="Uses",
        widget=forms.NumberInput(attrs={"placeholder": "1"}),
    )

    def clean(self):
        data = super().clean()
        if not data.get("anyone_with_link"):
            data["max_uses"] = None  # an email invitation is used once; the field is for links
        return data


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class OrganizationSettingsForm(forms.Form):
    name = forms.CharField(max_length=100)
    monthly_budget = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=2,
        label="Monthly budget (USD)",
        help_text="Leave empty for no limit.",
    )
    member_monthly_limit = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=2,
        label="Default per-member monthly limit (USD)",
        help_text="Leave empty for no limit.",
    )
    retention_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=RETENTION_DAYS_MAX,  # a larger value overflowed the database column and the purge's date
        label="Keep videos for (days)",
        help_text="Leave empty to keep them forever.",
    )
    sharing_enabled = forms.BooleanField(
        required=False,
        label="Allow share links",
        help_text="Members may share a video by link with people outside the organization. Off: every link "
        "stops opening at once (revoke a link to end it for good) and no new one can be made.",
    )


class MemberLimitForm(forms.Form):
    monthly_limit = forms.DecimalField(required=False, min_value=0, max_digits=12, decimal_places=2)


class ProfileForm(forms.Form):
    name = forms.CharField(max_length=150, required=False)
