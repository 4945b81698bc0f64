"""The routing settings page: the organization's policy (owners and admins change it) and, for
every canonical model, its suppliers in the order the router would try them now."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.core.errors import ApplicationError
from apps.generations import routing, selectors, services
from apps.generations.api.serializers import routed_model_data
from apps.providers import catalog


def _pairs(text: str, *, many: bool) -> dict:
    """``model: a, b`` lines (``many``) or ``model: replacement`` lines, as a dict."""
    out: dict = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        name, sep, rest = line.partition(":")
        if not sep or not name.strip() or not rest.strip():
            raise forms.ValidationError(f"Line {number}: write it as “model: {'a, b' if many else 'replacement'}”.")
        values = [v.strip() for v in rest.split(",") if v.strip()]
        out[name.strip()] = values if many else values[0]
    return out


class RoutingForm(forms.Form):
    order = forms.ChoiceField(choices=[(k, v) for k, v in routing.ORDERS.items()])
    suppliers = forms.CharField(
        required=False, help_text="For the explicit order: supplier names, comma-separated (e.g. “vertex, fal”)."
    )
    per_model = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="An order for one model per line, e.g. “veo-3.1: vertex, fal, replicate”.",
    )
    substitutions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Run another model when one is retired, one rule per line, e.g. “sora-2: veo-3.1”. "
        "No rule: a retired model is refused.",
    )
    resubmit_on_supplier_failure = forms.BooleanField(
        required=False,
        label="Resubmit to the next supplier when one fails a job for its own reasons (never for content)",
    )

    def clean_suppliers(self):
        return [v.strip() for v in self.cleaned_data["suppliers"].split(",") if v.strip()]

    def clean_per_model(self):
        return _pairs(self.cleaned_data["per_model"], many=True)

    def clean_substitutions(self):
        return _pairs(self.cleaned_data["substitutions"], many=False)


def _initial(policy: routing.Policy) -> dict:
    return {
        "order": policy.order,
        "suppliers": ", ".join(policy.suppliers),
        "per_model": "\n".join(f"{m}: {', '.join(s)}" for m, s in policy.per_model.items()),
        "substitutions": "\n".join(f"{m}: {r}" for m, r in policy.substitutions.items()),
        "resubmit_on_supplier_failure": policy.resubmit_on_supplier_failure,
    }


@login_required
@require_http_methods(["GET", "POST"])
def routing_settings(request: HttpRequest, org_slug: str) -> HttpResponse:
    org = request.organization
    policy = selectors.routing_policy(org=org)
    form = RoutingForm(request.POST or None, initial=_initial(policy))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.routing_policy_set(by=request.membership, **form.cleaned_data)
            except ApplicationError as exc:
                form.add_error(exc.param if exc.param in form.fields else None, exc.message)
                status = exc.status_code if exc.status_code != 400 else 422
            else:
                messages.success(request, "Routing policy saved.")
                return redirect("org-routing", org_slug=org_slug)
        else:
            status = 422
    keys = selectors.supplier_keys(org=org)
    rows = []
    for canonical in catalog.canonical_ids():
        try:
            route = selectors.route_for(org=org, model_id=canonical, policy=policy, keys=keys)
        except routing.Unroutable as exc:
            rows.append({"id": canonical, "retired": str(exc), "suppliers": []})
            continue
        if len(route.candidates) > 1 or route.chosen is None:
            rows.append(routed_model_data(route))
    return render(request, "generations/routing.html", {"form": form, "rows": rows}, status=status)
