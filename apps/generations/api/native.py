"""MediaRouter's native API (the original shape, DESIGN §7): generations, providers, models.

Thin views, one per operation: parse (``parsing``), call one service or selector, render
(``serializers``). The tenant scope and the token's organization come from OrgScopedAPIView. The
usage and estimate endpoints are apps.billing.api.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.api_keys import selectors as key_selectors
from apps.core.api import AnyAcceptNegotiation, OrgScopedAPIView
from apps.core.downloads import stored_file_response
from apps.core.errors import ApplicationError, NotFound
from apps.generations import routing, selectors, services
from apps.generations.api import parsing
from apps.generations.api.serializers import ERRORS, MODEL, PROVIDER, GenerationOutput, list_of, routed_model_data
from apps.generations.models import NATIVE_STATUS, Generation
from apps.generations.resolve import GenerationRequest, UnknownModelError, resolve_request
from apps.providers import catalog, registry
from apps.webhooks import services as webhooks

TAG = "native"


def native_error(exc: ApplicationError) -> None:
    """Give a service error this shape's names: the image field is ``image`` (the services name it
    the OpenAI way, ``input_reference``) and an unknown model is ``model_not_found``."""
    if exc.param == "input_reference":
        exc.param = "image"
    if isinstance(exc, UnknownModelError):
        exc.code = "model_not_found"


def generation_or_404(request, video_id: str) -> Generation:
    gen = selectors.generation_get(org=request.organization, public_id=video_id)
    if gen is None:
        raise NotFound("No such video generation in this organization.", param="id")
    return gen


def native_request(v: dict) -> GenerationRequest:
    """A validated native create body as the provider-neutral request."""
    image = image_type = image_url = None
    if v.get("image"):
        image, image_type, image_url = parsing.decode_image(v["image"])
    ratio = None
    if not v.get("size") and v.get("aspect_ratio"):
        ratio = parsing.parse_aspect_ratio(v["aspect_ratio"])
    return GenerationRequest(
        model=v["model"],
        prompt=v["prompt"],
        seconds=v.get("duration"),
        size=v.get("size"),
        aspect_ratio=ratio,
        seed=v.get("seed"),
        negative_prompt=v.get("negative_prompt", ""),
        image=image,
        image_content_type=image_type,
        image_url=image_url,
        key_id=v.get("key_id"),
    )


class GenerationCreateApi(OrgScopedAPIView):
    class InputSerializer(serializers.Serializer):
        # strict types (parsing): a number is not a prompt, fullwidth digits are not a duration; no default model
        model = parsing.StrictCharField(max_length=100)
        prompt = parsing.StrictCharField(max_length=services.PROMPT_MAX, trim_whitespace=True)
        duration = parsing.StrictIntegerField(required=False, min_value=1, max_value=600)
        aspect_ratio = parsing.StrictCharField(required=False, max_length=20)
        size = parsing.StrictCharField(required=False, max_length=20)
        image = parsing.StrictCharField(required=False, max_length=30_000_000)
        seed = parsing.StrictIntegerField(required=False, min_value=0)
        negative_prompt = parsing.StrictCharField(required=False, allow_blank=True, max_length=2500)
        key_id = parsing.StrictCharField(required=False, max_length=40)
        webhook_url = parsing.StrictCharField(
            required=False,
            max_length=2000,
            help_text="Also send this video's events here, signed with the default webhook endpoint's secret.",
        )

        class Meta:
            ref_name = "GenerationCreateBody"

    @extend_schema(
        request=InputSerializer,
        responses={201: GenerationOutput},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        summary="Create a video generation",
        operation_id="video_generations_create",
        tags=[TAG],
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        wanted = native_request(v)
        webhook_url = v.get("webhook_url", "").strip()
        try:
            if webhook_url:
                webhooks.request_webhook_check(org_id=request.organization.pk, url=webhook_url)
            resolved = resolve_request(org=request.organization, request=wanted)
            with transaction.atomic():  # the per-request webhook exists before the job's first event
                gen = services.generation_create(
                    org=request.organization,
                    user=request.user,
                    request=wanted,
                    resolved=resolved,
                    idempotency_key=parsing.idempotency_key(request),
                    membership=parsing.token_membership(request),
                )
                if webhook_url:
                    webhooks.video_webhook_add(org_id=request.organization.pk, video_id=gen.public_id, url=webhook_url)
        except ApplicationError as exc:
            native_error(exc)
            raise
        return Response(GenerationOutput(gen, context={"request": request}).data, status=status.HTTP_201_CREATED)


class GenerationListApi(OrgScopedAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, required=False),
            OpenApiParameter("offset", int, required=False),
            OpenApiParameter("status", str, required=False),
            OpenApiParameter("model", str, required=False),
            OpenApiParameter("tag", str, required=False, description="Videos with this tag (case-insensitive)"),
            OpenApiParameter("favourite", bool, required=False),
            OpenApiParameter("flagged", bool, required=False, description="Delivered other than asked"),
            OpenApiParameter("batch", str, required=False, description="Only this batch's items (its id)."),
        ],
        responses={200: inline_serializer("GenerationList", {"data": GenerationOutput(many=True)})},
        summary="List video generations",
        operation_id="video_generations_list",
        tags=[TAG],
    )
    def get(self, request):
        limit = parsing.int_param(request, "limit", 20, 1, 100)
        offset = parsing.int_param(request, "offset", 0, 0, 10**9)
        tag = request.query_params.get("tag")
        filters = selectors.GenerationFilters(
            model=request.query_params.get("model") or None,
            tag=services.normalize_tag(tag) if tag else None,
            favourite=parsing.bool_param(request, "favourite"),
            flagged=parsing.bool_param(request, "flagged"),
            batch=request.query_params.get("batch") or None,
        )
        qs = selectors.generation_list(org=request.organization, filters=filters)
        wanted_status = request.query_params.get("status")
        if wanted_status:
            states = [s for s, native in NATIVE_STATUS.items() if native == wanted_status]
            if not states:  # an unknown status filters nothing: say so rather than list nothing
                known = ", ".join(sorted(set(NATIVE_STATUS.values())))
                raise ApplicationError(f"status must be one of {known}.", param="status", code="invalid_value")
            qs = qs.filter(state__in=states)
        rows = list(qs[offset : offset + limit + 1])
        return Response(
            {
                "object": "list",
                "data": GenerationOutput(rows[:limit], many=True, context={"request": request}).data,
                "has_more": len(rows) > limit,
                "limit": limit,
                "offset": offset,
            }
        )


class GenerationRetrieveApi(OrgScopedAPIView):
    @extend_schema(responses={200: GenerationOutput}, summary="Retrieve a video generation", tags=[TAG])
    def get(self, request, video_id: str):
        return Response(GenerationOutput(generation_or_404(request, video_id), context={"request": request}).data)


class GenerationUpdateApi(OrgScopedAPIView):
    class InputSerializer(serializers.Serializer):
        favourite = serializers.BooleanField(required=False)
        tag = parsing.StrictCharField(
            required=False, allow_blank=True, max_length=200, help_text="One free-text tag; empty clears it."
        )

        class Meta:
            ref_name = "GenerationUpdateBody"

    @extend_schema(
        request=InputSerializer,
        responses={200: GenerationOutput},
        summary="Star a video or set its tag",
        operation_id="video_generations_update",
        tags=[TAG],
    )
    def patch(self, request, video_id: str):
        gen = generation_or_404(request, video_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not data.validated_data:
            raise ApplicationError("Send favourite, tag or both.", code="invalid_value")
        services.generation_library_set(by=parsing.membership(request), generation=gen, **data.validated_data)
        return Response(GenerationOutput(gen, context={"request": request}).data)


class GenerationDeleteApi(OrgScopedAPIView):
    @extend_schema(responses={204: None}, summary="Delete a video generation's stored files", tags=[TAG])
    def delete(self, request, video_id: str):
        services.generation_delete(by=parsing.membership(request), generation=generation_or_404(request, video_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class GenerationContentApi(OrgScopedAPIView):
    content_negotiation_class = AnyAcceptNegotiation  # any Accept header gets the file

    @extend_schema(
        parameters=[OpenApiParameter("variant", str, enum=["video", "thumbnail"], required=False)],
        responses={(200, "video/mp4"): bytes},
        summary="Download the stored video",
        tags=[TAG],
    )
    def get(self, request, video_id: str):
        variant = request.query_params.get("variant", "video")
        if variant not in ("video", "thumbnail"):
            raise ApplicationError("variant must be video or thumbnail.", param="variant")
        gen = generation_or_404(request, video_id)
        return stored_file_response(selectors.generation_file(generation=gen, variant=variant))


class ProviderListApi(OrgScopedAPIView):
    @extend_schema(
        summary="Providers and whether this organization can use them",
        tags=[TAG],
        responses={200: list_of("ProviderList", PROVIDER)},
    )
    def get(self, request):
        keys = key_selectors.provider_key_list(org=request.organization)
        usable = selectors.usable_providers(keys=keys)
        data = []
        for slug in registry.enabled_slugs():
            cls = registry.get_provider_class(slug)
            data.append(
                {
                    "id": slug,
                    "name": cls.label,
                    "requires_key": cls.requires_key,
                    "configured": slug in usable,
                    "keys": sum(1 for k in keys if k.provider == slug),
                    "models": [m.id for m in catalog.list_models(providers=[slug])],
                    "kind": cls.supplier_kind,
                    "health": routing.circuit_state(slug),
                    "supports_cancel": cls.supports_cancel,
                    "supports_callbacks": cls.supports_callbacks,
                    "key_fields": [
                        {
                            "name": f.name,
                            "label": f.label,
                            "secret": f.secret,
                            "kind": f.kind,
                            "required": f.required,
                            "choices": [value for value, _label in f.choices],
                        }
                        for f in cls.key_fields
                    ],
                }
            )
        return Response({"object": "list", "data": data})


class ModelListApi(OrgScopedAPIView):
    @extend_schema(summary="The model catalog", tags=[TAG], responses={200: list_of("ModelList", MODEL)})
    def get(self, request):
        org = request.organization
        policy = selectors.routing_policy(org=org)
        keys = selectors.supplier_keys(org=org)
        price = selectors.catalog_pricer()  # the prices in effect (the price history), one query
        data = []
        for canonical in catalog.canonical_ids():
            try:
                route = selectors.route_for(org=org, model_id=canonical, policy=policy, keys=keys, price=price)
            except routing.Unroutable:
                route = routing.Route(
                    requested=canonical,
                    pinned=False,
                    candidates=tuple(
                        routing.Candidate(m, reason=f"retired on {m.deprecated_on}")
                        for m in catalog.suppliers(canonical)
                    ),
                )
            data.append(routed_model_data(route))
        return Response({"object": "list", "data": data})


class RoutingPolicySerializer(serializers.Serializer):
    order = serializers.ChoiceField(
        choices=list(routing.ORDERS),
        help_text="; ".join(f"`{name}`: {what}" for name, what in routing.ORDERS.items()),
    )
    suppliers = serializers.ListField(
        child=serializers.CharField(), required=False, default=list, help_text="Supplier order for `explicit`."
    )
    per_model = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        default=dict,
        help_text='An order per canonical model, e.g. `{"veo-3.1": ["vertex", "fal"]}`.',
    )
    resubmit_on_supplier_failure = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Resubmit to the next supplier when one fails a job for its own reasons (never for content).",
    )
    substitutions = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        default=dict,
        help_text='Explicit rules for retired models: `{"sora-2": "veo-3.1"}`. No rule, no substitution.',
    )

    class Meta:
        ref_name = "RoutingPolicy"


def _policy_data(policy: routing.Policy) -> dict:
    return {
        "object": "routing_policy",
        "order": policy.order,
        "suppliers": list(policy.suppliers),
        "per_model": {k: list(v) for k, v in policy.per_model.items()},
        "resubmit_on_supplier_failure": policy.resubmit_on_supplier_failure,
        "substitutions": dict(policy.substitutions),
    }


class RoutingPolicyRetrieveApi(OrgScopedAPIView):
    @extend_schema(
        summary="The organization's routing policy",
        tags=[TAG],
        responses={200: RoutingPolicySerializer},
    )
    def get(self, request):
        return Response(_policy_data(selectors.routing_policy(org=request.organization)))


class RoutingPolicyUpdateApi(OrgScopedAPIView):
    @extend_schema(
        summary="Change the routing policy (owners and admins)",
        tags=[TAG],
        request=RoutingPolicySerializer,
        responses={200: RoutingPolicySerializer, 400: ERRORS[400], 403: ERRORS[400]},
    )
    def put(self, request):
        serializer = RoutingPolicySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.routing_policy_set(by=parsing.membership(request), **serializer.validated_data)
        return Response(_policy_data(selectors.routing_policy(org=request.organization)))
