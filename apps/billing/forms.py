"""Forms for the money pages. They parse input only."""

from __future__ import annotations

from datetime import date

from django import forms


class UsageRangeForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

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
