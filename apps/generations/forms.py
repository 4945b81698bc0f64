"""Forms for the generation pages. They parse input only: the catalog rules, budgets and image
checks live in the services, whose errors are put back on the field they name. (The usage page's
form is apps.billing.forms.)"""

from __future__ import annotations

from django import forms

from apps.accounts.models import Organization
from apps.billing.forms import DATE_BOUNDS
from apps.core.errors import ApplicationError, ValidationFailed
from apps.generations import services
from apps.generations.models import Generation, State
from apps.generations.resolve import GenerationRequest, ResolvedRequest, resolve_request
from apps.generations.selectors import GenerationFilters, ModelGroup
from apps.generations.services import PROMPT_MAX
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

    def __init__(
        self,
        *args,
        org: Organization,
        groups: list[ModelGroup],
        remix: Generation | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.remix = remix
        self.fields["model"].choices = [(g.label, [(o.value, o.label) for o in g.options]) for g in groups]
        options = {o.value: o for g in groups for o in g.options}
        wanted = self.data.get("model") if self.is_bound else self.initial.get("model")
        first = next((o for o in options.values() if not o.model.deprecated), next(iter(options.values()), None))
        chosen = options.get(wanted or "", first)
        listed: catalog.ModelInfo | None = chosen.model if chosen else None
        self.model_value = chosen.value if chosen else ""
        # the settings on screen, resolved for the live estimate (not validated: the member is still
        # choosing, and the image may come later; the create service resolves what is submitted)
        self.resolved: ResolvedRequest | None = None
        self.model_info: catalog.ModelInfo | None = None
        self.seconds_value, self.size_value = "", ""
        if remix is not None:
            # a remix keeps its source's model, duration and size: only the prompt is asked for
            self.resolved = resolve_request(
                org=org,
                request=GenerationRequest(model=remix.model, prompt="", seconds=remix.seconds, size=remix.size),
                remix_of=remix,
                validate=False,
            )
            self.model_info = self.resolved.model
            for name in ("model", "seconds", "size"):
                self.fields[name].required = False
            self.initial.setdefault("remix_of", remix.public_id)
            self.initial.setdefault("prompt", remix.prompt)
            self.seconds_value, self.size_value = str(remix.seconds), remix.size
            return
        if listed is None:
            return
        self.fields["seconds"].widget.choices = [(s, f"{s} seconds") for s in listed.seconds]
        self.fields["size"].widget.choices = [(s, size_label(listed, s)) for s in listed.sizes]
        self.seconds_value = self._pick("seconds", [str(s) for s in listed.seconds], str(listed.default_seconds))
        self.size_value = self._pick("size", list(listed.sizes), listed.default_size)
        self.resolved = resolve_request(
            org=org,
            request=GenerationRequest(
                model=self.model_value, prompt="", seconds=int(self.seconds_value), size=self.size_value
            ),
            validate=False,
        )
        self.model_info = self.resolved.model
        if not self.is_bound:
            self.initial.update(model=self.model_value, seconds=self.seconds_value, size=self.size_value)

    @property
    def runs_on(self) -> str:
        """ "Runs on fal" for a routed choice, with the suppliers skipped and why."""
        route = self.resolved.route if self.resolved is not None else None
        if route is None or route.pinned or len(route.candidates) < 2 or self.model_info is None:
            return ""
        label = registry.PROVIDERS.get(self.model_info.provider, (self.model_info.provider,))[0]
        skipped = [
            f"{registry.PROVIDERS.get(c.supplier, (c.supplier,))[0]}: {c.reason}"
            for c in route.candidates
            if c.reason and c.supplier != self.model_info.provider and "key" not in c.reason
        ]
        return f"Will run on {label}" + (f" ({'; '.join(skipped)})" if skipped else "") + "."

    def _pick(self, name: str, allowed: list[str], default: str) -> str:
        source = self.data if self.is_bound else self.initial
        value = str(source.get(name) or "")
        return value if value in allowed else default

    @property
    def estimate(self):
        return self.resolved.estimate if self.resolved is not None else None

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
    # bounded: a day past 9999-12-31 overflowed (a 500 any viewer could cause)
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}), validators=DATE_BOUNDS
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}), validators=DATE_BOUNDS
    )
    tag = forms.CharField(
        required=False, max_length=services.TAG_MAX, widget=forms.TextInput(attrs={"list": "gallery-tags"})
    )
    favourite = forms.BooleanField(required=False, label="Favourites only")
    flagged = forms.BooleanField(required=False, label="Not as asked only")

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
            tag=data.get("tag") or None,
            favourite=True if data.get("favourite") else None,
            flagged=True if data.get("flagged") else None,
        )

    def clean_tag(self) -> str:
        try:
            return services.normalize_tag(self.cleaned_data["tag"])
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from None


class LibraryForm(forms.Form):
    """A video's star and tag (the Gallery card and the video's page). A field the form did not
    send is left as it is: the star button and the tag box post separately."""

    favourite = forms.TypedChoiceField(
        required=False, choices=[("true", "true"), ("false", "false")], coerce=lambda v: v == "true", empty_value=None
    )
    tag = forms.CharField(required=False, max_length=200, strip=True)

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in ("favourite", "tag") if name in self.data}
