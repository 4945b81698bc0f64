"""The native API for who-am-I and provider keys. One APIView per operation, explicit Input and
Output serializers (never a ModelSerializer on a model that holds a secret), one service or
selector call each."""

from __future__ import annotations

from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.accounts.models import Membership
from apps.api_keys import selectors, services
from apps.core.api import OrgScopedAPIView, created

_ERROR = OpenApiResponse(description='The error envelope: `{"error": {"message", "type", "param", "code"}}`.')


def _membership(request) -> Membership:
    """The caller's membership in the token's organization (found while authenticating)."""
    return request.auth.membership


class MeApi(OrgScopedAPIView):
    """Who this token acts as: the user and the organization it is bound to."""

    class OutputSerializer(serializers.Serializer):
        user = serializers.EmailField()
        organization = serializers.CharField()
        organization_name = serializers.CharField()
        role = serializers.CharField()
        token = serializers.CharField()

        class Meta:
            ref_name = "Me"

    serializer_class = OutputSerializer

    def get(self, request):
        token = request.auth
        data = {
            "user": request.user.email,
            "organization": token.organization.slug,
            "organization_name": token.organization.name,
            "role": _membership(request).role,
            "token": token.public_id,
        }
        return Response(self.OutputSerializer(data).data)


class ProviderKeyOutputSerializer(serializers.Serializer):
    """A provider key as the API shows it: masked, never the secret or its ciphertext."""

    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    provider = serializers.CharField()
    label = serializers.CharField()
    last4 = serializers.CharField(source="masked", help_text="The last four characters, as `…abcd`.")
    status = serializers.CharField(
        help_text="`valid` (the provider accepted it), `unverified` (it could not be checked yet) or "
        "`invalid` (the provider refused it; see `last_error`)."
    )
    is_default = serializers.BooleanField()
    last_validated_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(help_text="Why the last check failed (empty when it did not).")
    settings = serializers.DictField(
        source="details",
        child=serializers.CharField(),
        help_text="The key's non-secret fields (for example a Vertex `location` or a gateway `base_url`).",
    )
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "ProviderKey"

    def get_object(self, obj) -> str:
        return "provider_key"


def _key_input_serializer() -> type[serializers.Serializer]:
    """The create request, derived from every provider's declared credential fields (all
    providers, enabled or not, so the schema does not depend on the server's switches)."""
    options = selectors.key_provider_options(include_disabled=True)
    attrs: dict = {
        "provider": serializers.CharField(
            max_length=40, help_text="One of " + ", ".join(f"`{o.slug}`" for o in options) + "."
        ),
        "label": serializers.CharField(max_length=100, required=False, allow_blank=True, default=""),
        "make_default": serializers.BooleanField(required=False, allow_null=True, default=None),
    }
    for use in selectors.key_field_union(options):
        where = ", ".join(f"`{slug}`" for slug in use.providers)
        attrs[use.field.name] = serializers.CharField(
            max_length=use.field.max_length,
            required=False,
            allow_blank=True,
            write_only=use.field.secret,
            help_text=f"{use.field.label} ({where}). {use.field.help}".strip(),
        )
    attrs["Meta"] = type("Meta", (), {"ref_name": "ProviderKeyCreateRequest"})
    return type("ProviderKeyCreateRequest", (serializers.Serializer,), attrs)


class KeyListApi(OrgScopedAPIView):
    """The organization's provider keys, masked. Every member may list them."""

    class OutputSerializer(serializers.Serializer):
        object = serializers.CharField(default="list")
        data = ProviderKeyOutputSerializer(many=True)

        class Meta:
            ref_name = "ProviderKeyList"

    @extend_schema(operation_id="keys_list", tags=["keys"], responses={200: OutputSerializer})
    def get(self, request):
        """The organization's provider keys, masked (`…abcd`). Every member may list them."""
        keys = selectors.provider_key_list(org=self.organization)
        return Response(self.OutputSerializer({"object": "list", "data": keys}).data)


class KeyCreateApi(OrgScopedAPIView):
    """Add a provider key (owners and admins). It is checked with the provider first: a key the
    provider refuses is not saved (400); one that cannot be checked now is saved as unverified."""

    InputSerializer = _key_input_serializer()

    @extend_schema(
        operation_id="keys_create",
        tags=["keys"],
        request=InputSerializer,
        responses={201: ProviderKeyOutputSerializer, 400: _ERROR, 403: _ERROR},
    )
    @sensitive_variables("data", "serializer")  # the credential fields: hidden in error reports
    def post(self, request):
        """Add a provider key (owners and admins): `{"provider", "label"?, <the provider's credential
        fields>}` — `api_key` for most providers; Kling also takes `access_key` + `secret_key`;
        see `GET /v1/providers` for each provider's fields. The key is checked with the provider
        first: a key it refuses is not saved (400, with the provider's reason); a key that cannot
        be checked now is saved as `unverified`. The first key of a provider becomes its default.
        The response never contains a secret, only its last four characters (and the key's
        non-secret settings, such as a location)."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        key = services.provider_key_create(
            by=_membership(request),
            provider=data.pop("provider"),
            label=data.pop("label", ""),
            make_default=data.pop("make_default", None),
            **data,
        )
        return created(ProviderKeyOutputSerializer(key).data)


class KeyDeleteApi(OrgScopedAPIView):
    """Delete a provider key (owners and admins). If it was the default, another key of the same
    provider becomes the default."""

    @extend_schema(
        operation_id="keys_delete",
        tags=["keys"],
        request=None,
        responses={204: None, 403: _ERROR, 404: _ERROR},
    )
    def delete(self, request, key_id: str):
        services.provider_key_delete(by=_membership(request), public_id=key_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class KeyValidateApi(OrgScopedAPIView):
    """Check a stored key with its provider now (owners and admins) and return it."""

    @extend_schema(
        operation_id="keys_validate",
        tags=["keys"],
        request=None,
        responses={200: ProviderKeyOutputSerializer, 400: _ERROR, 403: _ERROR, 404: _ERROR},
    )
    def post(self, request, key_id: str):
        key = services.provider_key_validate(by=_membership(request), public_id=key_id)
        return Response(ProviderKeyOutputSerializer(key).data)
