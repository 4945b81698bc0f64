"""Short-lived URLs of a generation's stored input image, for suppliers that fetch images by URL
(Luma on fal; Replicate above its inline limit; BytePlus accepts both).

- On S3 (or MinIO/R2): a presigned GET of the object, valid ``INPUT_IMAGE_URL_SECONDS``.
- On local storage: a MediaRouter URL ``/inputs/<signed>/`` whose token is the storage key signed
  with ``SECRET_KEY`` and a timestamp (``django.core.signing``), valid as long; only when
  ``SITE_URL`` is a public https URL the supplier can reach. Otherwise None: the adapter sends the
  image inline (a ``data:`` URI) where the model accepts one, or refuses before submitting.

The URL names one object and expires; it never lists, and no other tenant's file can be reached
with it (the signature covers the exact key).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.urls import reverse

SALT = "mediarouter.input-image"


def _seconds() -> int:
    return int(getattr(settings, "INPUT_IMAGE_URL_SECONDS", 3600))


def _public_https(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return False
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses)


def signed_token(key: str) -> str:
    return signing.dumps(key, salt=SALT, compress=True)


def key_from_token(token: str) -> str | None:
    """The storage key a token names, or None when it is forged, tampered with or expired."""
    try:
        key = signing.loads(token, salt=SALT, max_age=_seconds())
    except signing.BadSignature:  # also SignatureExpired
        return None
    return key if isinstance(key, str) and key.startswith("orgs/") and "/inputs/" in key else None


def input_image_url(key: str) -> str | None:
    """A URL a supplier can fetch the stored input image from, for a while; None when there is
    none (local storage behind a non-public SITE_URL)."""
    if not key:
        return None
    backend = type(default_storage).__name__
    if "S3" in backend:
        url = default_storage.url(key, expire=_seconds())
        return url if url.startswith("https://") else None
    site = getattr(settings, "SITE_URL", "")
    if not _public_https(site):
        return None
    return site.rstrip("/") + reverse("input-image", kwargs={"token": signed_token(key)})
