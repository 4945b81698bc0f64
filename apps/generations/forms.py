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
    # a batch's id (its page links here); anything else is ignored, as any filter that does not parse
    batch = forms.RegexField(regex=r"^batch_[0-9a-f]{8,32}$", required=False, max_length=40, widget=forms.HiddenInput)

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
            batch=(data.get("batch") or "").strip() or None,
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


# --- the playground's batch mode ----------------------------------------------------------------

BATCH_COLUMNS = ("prompt", "model", "seconds", "duration", "size", "image_url")
BATCH_UPLOAD_TYPES = {"csv": "CSV", "jsonl": "JSONL", "ndjson": "JSONL"}


class BatchForm(forms.Form):
    """Many videos at once: one prompt per line, or a CSV / JSONL file with a row per video
    (``prompt`` and optionally ``model``, ``seconds`` (or ``duration``), ``size``, ``image_url``).
    What a row leaves out comes from the model, duration and size chosen here. Rows are parsed
    here (with every row's problem named); the batch service checks them against the catalog and
    the budgets, as a whole."""

    prompts = forms.CharField(
        required=False,
        label="Prompts, one per line",
        widget=forms.Textarea(attrs={"rows": 8, "placeholder": "A red fox in fresh snow\nA paper boat on a calm lake"}),
    )
    file = forms.FileField(
        required=False,
        label="Or a CSV / JSONL file",
        help_text="Columns: prompt, and optionally model, seconds (or duration), size, image_url.",
        widget=forms.FileInput(attrs={"accept": ".csv,.jsonl,.ndjson,text/csv,application/x-ndjson"}),
    )
    model = forms.ChoiceField(label="Model")
    seconds = forms.IntegerField(label="Duration (s)", required=False, min_value=1, max_value=600)
    size = forms.CharField(label="Size", required=False, max_length=20)
    concurrency = forms.IntegerField(label="At once", min_value=1)

    def __init__(self, *args, groups: list[ModelGroup], **kwargs):
        from django.conf import settings

        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [(g.label, [(o.value, o.label) for o in g.options]) for g in groups]
        self.fields["concurrency"] = forms.IntegerField(
            label="At once",
            min_value=1,
            max_value=settings.BATCH_MAX_CONCURRENCY,
            initial=settings.BATCH_DEFAULT_CONCURRENCY,
            help_text=f"How many run at the same time (at most {settings.BATCH_MAX_CONCURRENCY}).",
        )
        self.requests: list[GenerationRequest] = []

    def clean(self):
        data = super().clean()
        text, upload = (data.get("prompts") or "").strip(), data.get("file")
        if self.errors:
            return data
        if text and upload:
            raise forms.ValidationError("Paste prompts or upload a file, not both.")
        if not text and not upload:
            raise forms.ValidationError("Paste at least one prompt, one per line, or upload a CSV or JSONL file.")
        rows = _rows_from_upload(upload) if upload else [{"prompt": line} for line in text.splitlines() if line.strip()]
        self.requests = _requests_from_rows(rows, data)
        return data


def _rows_from_upload(upload) -> list[dict]:
    """The file's rows as dicts: its type from its name (CSV or JSONL), its size bounded, UTF-8."""
    import csv
    import io
    import json

    from django.conf import settings

    extension = (upload.name or "").rsplit(".", 1)[-1].lower()
    if extension not in BATCH_UPLOAD_TYPES:
        raise forms.ValidationError("Upload a .csv or .jsonl file.")
    limit = settings.BATCH_UPLOAD_MAX_BYTES
    if upload.size > limit:
        raise forms.ValidationError(f"The file is {upload.size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB.")
    try:
        text = upload.read(limit + 1).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise forms.ValidationError("The file is not UTF-8 text.") from None
    if "\x00" in text:
        raise forms.ValidationError("The file is not a text file.")
    if BATCH_UPLOAD_TYPES[extension] == "CSV":
        reader = csv.DictReader(io.StringIO(text))
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if "prompt" not in columns:
            raise forms.ValidationError("The CSV needs a header row with a prompt column.")
        unknown = sorted(set(columns) - set(BATCH_COLUMNS))
        if unknown:
            raise forms.ValidationError(f"Unknown CSV columns: {', '.join(unknown)} (use {', '.join(BATCH_COLUMNS)}).")
        try:
            return [
                {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
                for row in reader
                if any((v or "").strip() for v in row.values() if isinstance(v, str))
            ]
        except csv.Error as exc:
            raise forms.ValidationError(f"The CSV does not parse: {exc}.") from None
    rows, errors = [], []
    for number, line in enumerate((ln for ln in text.splitlines() if ln.strip()), start=1):
        try:
            row = json.loads(line)
        except ValueError:
            errors.append(f"Row {number}: not a JSON object.")
            continue
        if not isinstance(row, dict):
            errors.append(f"Row {number}: not a JSON object.")
            continue
        unknown = sorted(set(row) - set(BATCH_COLUMNS))
        if unknown:
            errors.append(f"Row {number}: unknown fields {', '.join(unknown)}.")
            continue
        rows.append(row)
    if errors:
        raise forms.ValidationError(errors[:10])
    return rows


def _requests_from_rows(rows: list[dict], defaults: dict) -> list[GenerationRequest]:
    """Each row as a request (the form's model, duration and size where it has none); every row's
    problem is reported, numbered from 1."""
    requests, errors = [], []
    for number, row in enumerate(rows, start=1):
        prompt = row.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            errors.append(f"Row {number}: a prompt is required.")
            continue
        seconds = row.get("seconds", row.get("duration"))
        if seconds in (None, ""):
            seconds = defaults.get("seconds")
        elif isinstance(seconds, bool) or not (
            isinstance(seconds, int)
            or (isinstance(seconds, str) and seconds.strip().isascii() and seconds.strip().isdigit())
        ):
            errors.append(f"Row {number}: seconds must be a whole number.")
            continue
        values = {}
        for name in ("model", "size", "image_url"):
            value = row.get(name)
            if value not in (None, "") and not isinstance(value, str):
                errors.append(f"Row {number}: {name} must be text.")
                break
            values[name] = (value or "").strip()
        else:
            url = values["image_url"]  # checked (scheme, address) by the create service, per row
            if url and not url.startswith(("https://", "http://")):
                errors.append(f"Row {number}: image_url must be an https URL.")
                continue
            if len(prompt) > PROMPT_MAX:
                errors.append(f"Row {number}: the prompt is limited to {PROMPT_MAX} characters.")
                continue
            requests.append(
                GenerationRequest(
                    model=values["model"] or defaults["model"],
                    prompt=prompt.strip(),
                    seconds=int(seconds) if seconds not in (None, "") else None,
                    size=values["size"].lower() or defaults.get("size") or None,
                    image_url=url or None,
                )
            )
    if errors:
        raise forms.ValidationError(errors[:10] + ([f"… and {len(errors) - 10} more."] if len(errors) > 10 else []))
    return requests
