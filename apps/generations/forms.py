"""Forms for the generation pages. They parse input only: the catalog rules, budgets and image
checks live in the services, whose errors are put back on the field they name."""

from __future__ import annotations

from datetime import date

from django import forms

from apps.core.errors import ApplicationError
from apps.generations.models import Generation, State
from apps.generations.selectors import GenerationFilters, ModelGroup
from apps.generations.services import PROMPT_MAX, ValidationFailed
from apps.providers import catalog, registry

# the services name request fields the API's way; the playground's fields are named for people
SERVICE_PARAMS = {"input_reference": "image", "image": "image", "video_id": None}


def model_label(model: catalog.ModelInfo) -> str:
    if model.deprecated:
        return f"{model.label} — deprecated {model.deprecated_on:%Y-%m-%d}"
    return model.label


def size_label(model: catalog.ModelInfo, size: str) -> str:
    text = size.replace("x", " \N{MULTIPLICATION SIGN} ")
    if size not in model.allowed_sizes(has_image=False):
        text += " (with an input image)"
    return text


class PlaygroundForm(forms.Form):
    prompt = forms.CharField(
        max_length=PROMPT_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "A red fox running through fresh snow at dawn"}),
    )
    model = forms.ChoiceField()
    # plain fields with a select: the catalog's message ("Kling 1.6 supports 5, 10 seconds") beats
    # "Select a valid choice" when the model changed without the options being refreshed
    seconds = forms.IntegerField(label="Duration", widget=forms.Select)
    size = forms.CharField(label="Size", max_length=20, widget=forms.Select)
    seed = forms.IntegerField(required=False, min_value=0, max_value=catalog.SEED_MAX)
    negative_prompt = forms.CharField(
        required=False, max_length=catalog.NEGATIVE_PROMPT_MAX, widget=forms.Textarea(attrs={"rows": 2})
    )
    image = forms.FileField(
        required=False,
        label="Input image (optional)",
        help_text="PNG, JPEG or WebP, for image-to-video models.",
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/webp", "data-image-preview": ""}),
    )
    remix_of = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, groups: list[ModelGroup], remix: Generation | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.remix = remix
        self.fields["model"].choices = [(g.label, [(m.id, model_label(m)) for m in g.models]) for g in groups]
        models = {m.id: m for g in groups for m in g.models}
        wanted = self.data.get("model") if self.is_bound else self.initial.get("model")
        first = next((m for m in models.values() if not m.deprecated), next(iter(models.values()), None))
        self.model_info: catalog.ModelInfo | None = models.get(wanted or "", first)
        self.seconds_value, self.size_value = "", ""
        if remix is not None:
            # a remix keeps its source's model, duration and size: only the prompt is asked for
            self.model_info = catalog.get_model(remix.model)
            for name in ("model", "seconds", "size"):
                self.fields[name].required = False
            self.initial.setdefault("remix_of", remix.public_id)
            self.initial.setdefault("prompt", remix.prompt)
            self.seconds_value, self.size_value = str(remix.seconds), remix.size
            return
        model = self.model_info
        if model is None:
            return
        self.fields["seconds"].widget.choices = [(s, f"{s} seconds") for s in model.seconds]
        self.fields["size"].widget.choices = [(s, size_label(model, s)) for s in model.sizes]
        self.seconds_value = self._pick("seconds", [str(s) for s in model.seconds], str(model.default_seconds))
        self.size_value = self._pick("size", list(model.sizes), model.default_size)
        if not self.is_bound:
            self.initial.update(model=model.id, seconds=self.seconds_value, size=self.size_value)

    def _pick(self, name: str, allowed: list[str], default: str) -> str:
        source = self.data if self.is_bound else self.initial
        value = str(source.get(name) or "")
        return value if value in allowed else default

    @property
    def estimate(self):
        if self.model_info is None or not self.seconds_value:
            return None
        return catalog.estimate_cost(self.model_info, seconds=int(self.seconds_value), size=self.size_value)

    def add_service_error(self, exc: ApplicationError) -> None:
        errors = exc.errors if isinstance(exc, ValidationFailed) else {exc.param: exc.message}
        for param, message in errors.items():
            field = SERVICE_PARAMS.get(param, param)
            self.add_error(field if field in self.fields else None, message)


class GalleryFilterForm(forms.Form):
    """The gallery's filters, from the query string. A value that does not parse is ignored."""

    q = forms.CharField(required=False, max_length=200, label="Search prompts")
    member = forms.ChoiceField(required=False)
    provider = forms.ChoiceField(required=False)
    model = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *State.choices])
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [("", "Anyone")] + [(m.user.email, m.user.display_name) for m in members]
        models = catalog.list_models()
        providers = dict.fromkeys(m.provider for m in models)
        labels = dict(registry.provider_choices())
        self.fields["provider"].choices = [("", "Any provider")] + [(p, labels.get(p, p)) for p in providers]
        self.fields["model"].choices = [("", "Any model")] + [(m.id, m.label) for m in models]

    def filters(self) -> GenerationFilters:
        data = {}
        if self.is_bound:
            self.is_valid()
            data = {name: value for name, value in self.cleaned_data.items() if name not in self.errors}
        return GenerationFilters(
            user_email=data.get("member") or None,
            provider=data.get("provider") or None,
            model=data.get("model") or None,
            state=data.get("status") or None,
            created_from=data.get("date_from"),
            created_to=data.get("date_to"),
            search=(data.get("q") or "").strip() or None,
        )


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
