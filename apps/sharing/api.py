"""Share links in the native API: list and create a video's links, revoke one.

``POST /v1/video/generations/{id}/shares`` answers the link's URL once (only its digest is kept);
``GET`` on the same path lists the video's links without it; ``DELETE /v1/shares/{id}`` revokes.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.core.api import OrgScopedAPIView
from apps.core.errors import NotFound
from apps.generations import selectors as generation_selectors
from apps.generations.api import parsing
from apps.sharing import selectors, services
from apps.sharing.models import ShareLink

TAG = "native"


def _ts(value) -> int | None:
    return int(value.timestamp()) if value else None


def share_data(share: ShareLink, *, url: str | None = None) -> dict:
    return {
        "id": share.public_id,
        "object": "share_link",
        "video_id": share.generation.public_id if share.generation_id else None,
        # only in the answer of the create: the token is not stored
        "url": url,
        "status": share.state,
        "include_prompt": share.include_prompt,
        "created_by": share.created_by.email if share.created_by_id else None,
        "created_at": _ts(share.created_at),
        "expires_at": _ts(share.expires_at),
        "revoked_at": _ts(share.revoked_at),
        "view_count": share.view_count,
        "last_viewed_at": _ts(share.last_viewed_at),
    }


SHARE = inline_serializer(
    "ShareLink",
    {
        "id": serializers.CharField(),
        "object": serializers.CharField(),
        "video_id": serializers.CharField(),
        "url": serializers.CharField(allow_null=True, help_text="Only in the create's answer, once."),
        "status": serializers.ChoiceField(choices=["active", "expired", "revoked"]),
        "include_prompt": serializers.BooleanField(),
        "created_by": serializers.CharField(allow_null=True),
        "created_at": serializers.IntegerField(),
        "expires_at": serializers.IntegerField(),
        "revoked_at": serializers.IntegerField(allow_null=True),
        "view_count": serializers.IntegerField(),
        "last_viewed_at": serializers.IntegerField(allow_null=True),
    },
)


def _video(request, video_id: str):
    gen = generation_selectors.generation_get(org=request.organization, public_id=video_id)
    if gen is None:
        raise NotFound("No such video generation in this organization.", param="id")
    return gen


class ShareCreateApi(OrgScopedAPIView):
    class InputSerializer(serializers.Serializer):
        expires_in_days = parsing.StrictIntegerField(required=False, default=7, min_value=1, max_value=3650)
        include_prompt = serializers.BooleanField(required=False, default=False)

        class Meta:
            ref_name = "ShareLinkCreateBody"

    @extend_schema(
        request=InputSerializer, responses={201: SHARE}, summary="Create a share link to a video", tags=[TAG]
    )
    def post(self, request, video_id: str):
        gen = _video(request, video_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        share, token = services.share_create(
            by=parsing.membership(request),
            generation=gen,
            expires_in_days=data.validated_data["expires_in_days"],
            include_prompt=data.validated_data["include_prompt"],
        )
        url = request.build_absolute_uri(reverse("share-page", kwargs={"share_token": token}))
        return Response(share_data(share, url=url), status=status.HTTP_201_CREATED)


class ShareListApi(OrgScopedAPIView):
    @extend_schema(
        responses={200: inline_serializer("ShareLinkList", {"data": SHARE})},
        summary="A video's share links",
        tags=[TAG],
    )
    def get(self, request, video_id: str):
        gen = _video(request, video_id)
        shares = selectors.share_list(org=request.organization, generation=gen)
        return Response({"object": "list", "data": [share_data(s) for s in shares]})


class ShareRevokeApi(OrgScopedAPIView):
    @extend_schema(responses={200: SHARE}, summary="Revoke a share link", tags=[TAG])
    def delete(self, request, share_id: str):
        share = services.share_revoke(by=parsing.membership(request), public_id=share_id)
        return Response(share_data(share))
