"""The gallery: every video of the organization, with filters, search and pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from apps.accounts import selectors as account_selectors
from apps.core.views import wants_fragment
from apps.generations import selectors
from apps.generations.forms import GalleryFilterForm
from apps.generations.views.common import with_models

GALLERY = "generations/gallery.html"
GALLERY_PAGE_SIZE = 12


@login_required
@require_GET
@vary_on_headers("HX-Request")
def gallery(request: HttpRequest, org_slug: str) -> HttpResponse:
    members = account_selectors.member_list(org=request.organization)
    form = GalleryFilterForm(request.GET or None, members=members)
    videos = selectors.generation_list(org=request.organization, filters=form.filters())
    page = Paginator(videos, GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = with_models(page.object_list)
    query = request.GET.copy()
    query.pop("page", None)
    fragment = wants_fragment(request)
    template = GALLERY + "#gallery-results" if fragment else GALLERY
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "filtered": any(v for k, v in request.GET.items() if k != "page"),
        "tags": [] if fragment else selectors.generation_tags(org=request.organization),
    }
    return render(request, template, context)
