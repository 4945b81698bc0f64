"""Forms for the money pages. They parse input only."""

from __future__ import annotations

from datetime import date

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

# the dates a range may name (the API's bounds): a day past the end must not overflow
DATE_MIN, DATE_MAX = date(2000, 1, 1), date(2999, 12, 31)
DATE_BOUNDS = [MinValueValidator(DATE_MIN), MaxValueValidator(DATE_MAX)]


class UsageRangeForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), validators=DATE_BOUNDS)
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), validators=DATE_BOUNDS)

    MAX_DAYS = 366

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if end < start:
                self.add_error("end", "The end date must not be before the start date.")
            elif (end - start).days >= self.MAX_DAYS:
                self.add_error("start", f"The range is limited to {self.MAX_DAYS} days.")
        return cleaned

    def range(self, default: tuple[date, date]) -> tuple[date, date]:
        if self.is_valid():
            return self.cleaned_data["start"], self.cleaned_data["end"]
        return default
