"""Content credentials: the C2PA manifest a provider signed into its video, read back from storage.

OpenAI, Google and others sign what their models make with C2PA (who made it, with what, that
it was made by AI). MediaRouter stores the provider's bytes untouched, so the credentials survive;
this module reads them, once, right after the download (``media.inspect_stored``) and for older
videos (``media.backfill``), and keeps a short summary on the generation
(``Generation.content_credentials``): who issued it, whether it validates, when it was signed,
the claim generator, the assertions' labels and the actions' digital source type.

The read is done by the maintained ``c2pa-python`` (the C2PA Rust SDK) on the stored file's
own file object (local or S3), read only: nothing is written back. Its cost is bounded: to check
the hashes the SDK reads the MP4's media box whole into memory (peak memory about the file's
size, ~0.4 s per 100 MB here), so a file over ``C2PA_MAX_BYTES`` is only read for its manifest
(a few KB, milliseconds) and recorded as ``unverified``. The SDK never goes to the network here:
remote manifests and OCSP are not fetched and no network host is allowed, so a provider's file
cannot make the worker call out.

``state`` is one of:

- ``valid``: signature and hashes check out and the signer chains to a trust anchor
  (``C2PA_TRUST_ANCHORS``, e.g. the C2PA trust list);
- ``untrusted``: signature and hashes check out, but the signer is on no configured trust list;
- ``invalid``: a check failed (``failures`` has the C2PA status codes, e.g.
  ``assertion.bmffHash.mismatch`` for bytes changed after signing);
- ``unverified``: the manifest was read but not checked (the file is over ``C2PA_MAX_BYTES``);
- ``none``: the file carries no manifest;
- ``unreadable``: a manifest could not be read (``error`` says why). Never fails the generation.

An empty dict means "not read yet" (videos stored before this existed, until the backfill).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from functools import lru_cache
from typing import IO

from cryptography import x509
from django.conf import settings

logger = logging.getLogger(__name__)

VALID, UNTRUSTED, INVALID, UNVERIFIED = "valid", "untrusted", "invalid", "unverified"
NONE, UNREADABLE = "none", "unreadable"
STATES = (VALID, UNTRUSTED, INVALID, UNVERIFIED, NONE, UNREADABLE)

DEFAULT_MAX_BYTES = 256 * 1024**2
MAX_LABELS = 20  # assertion labels kept
MAX_ACTIONS = 10
MAX_FAILURES = 10
MAX_TEXT = 120  # characters of any one name, title or label
UNTRUSTED_CODES = frozenset({"signingCredential.untrusted"})
# IPTC digital source types that say a model made (or helped make) the media
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"})


def _text(value, limit: int = MAX_TEXT) -> str | None:
    if value is None or value == "":
        return None
    return str(value)[:limit]


def max_bytes() -> int:
    return int(getattr(settings, "C2PA_MAX_BYTES", DEFAULT_MAX_BYTES))


def empty(state: str, **extra) -> dict:
    """A summary with every key present (the API's object has a fixed shape)."""
    summary = {
        "state": state,
        "present": None if state == UNREADABLE else False,  # unreadable: there may be some
        "issuer": None,
        "signer": None,
        "signed_at": None,
        "claim_generator": None,
        "title": None,
        "ai_generated": None,
        "digital_source_type": None,
        "actions": [],
        "assertions": [],
        "failures": [],
        "manifests": 0,
        "error": None,
    }
    summary.update(extra)
    return summary


@lru_cache(maxsize=4)
def _anchors(path: str, mtime_ns: int) -> str | None:
    """The PEM bundle at ``path`` if it holds at least one certificate (cached per file version)."""
    try:
        with open(path, "rb") as fh:
            pem = fh.read()
        x509.load_pem_x509_certificates(pem)  # refuses an empty or malformed bundle
    except (OSError, ValueError) as exc:
        logger.error("C2PA_TRUST_ANCHORS %s is not a readable PEM bundle (%s): signers are untrusted", path, exc)
        return None
    return pem.decode("ascii", errors="replace")


def trust_anchors() -> str | None:
    """The configured trust anchors (``C2PA_TRUST_ANCHORS``: a path to a PEM bundle), or None."""
    path = getattr(settings, "C2PA_TRUST_ANCHORS", "") or ""
    if not path:
        return None
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        mtime = 0
    return _anchors(path, mtime)


def _context(c2pa, *, verify: bool):
    """Reader settings: verify (trust included) when asked, and never fetch anything over the network."""
    config: dict = {
        "verify": {
            "verify_after_reading": verify,
            "verify_trust": True,
            "remote_manifest_fetch": False,
            "ocsp_fetch": False,
        },
        "core": {"allowed_network_hosts": []},
    }
    if verify and (anchors := trust_anchors()):
        config["trust"] = {"trust_anchors": anchors}
    return c2pa.Context.from_dict(config)


def _size(fileobj: IO[bytes]) -> int:
    fileobj.seek(0, 2)
    size = fileobj.tell()
    fileobj.seek(0)
    return size


def read(fileobj: IO[bytes]) -> dict:
    """The content credentials of ``fileobj`` (a seekable binary file, read from the start) as a
    summary (see the module's docstring). Never raises: a manifest that cannot be read, a format
    the SDK does not know, a failing read are ``unreadable``, with the reason."""
    import c2pa  # here, not at the top: only workers read; web processes never load the native library

    try:
        verify = _size(fileobj) <= max_bytes()
        with _context(c2pa, verify=verify) as context:  # native handles: released after each read
            reader = c2pa.Reader.try_create(None, fileobj, context=context)
            if reader is None:
                return empty(NONE)
            with reader:
                store = json.loads(reader.json())
    except c2pa.C2paError.NotSupported:
        return empty(UNREADABLE, error="The file's format cannot carry content credentials the reader knows.")
    except c2pa.C2paError.RemoteManifest:
        return empty(UNREADABLE, error="The credentials are stored remotely, which MediaRouter does not fetch.")
    except c2pa.C2paError as exc:
        return empty(UNREADABLE, error=_text(str(exc) or type(exc).__name__.lstrip("_"), 200))
    except Exception as exc:  # a storage read failing midway: the generation goes on without them
        logger.exception("could not read content credentials")
        return empty(UNREADABLE, error=f"The stored file could not be read ({type(exc).__name__}).")
    return summarize(store, verified=verify)


def _source_type(value) -> str | None:
    """``http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia`` → its last segment."""
    if not isinstance(value, str) or not value:
        return None
    return _text(value.rstrip("/").rsplit("/", 1)[-1])


def _actions(assertions: list) -> list[dict]:
    found = []
    for assertion in assertions:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            if isinstance(action, dict) and len(found) < MAX_ACTIONS:
                found.append(
                    {
                        "action": _text(action.get("action")),
                        "digital_source_type": _source_type(action.get("digitalSourceType")),
                    }
                )
    return found


def _claim_generator(manifest: dict) -> str | None:
    info = manifest.get("claim_generator_info") or []
    if info and isinstance(info[0], dict) and info[0].get("name"):
        first = info[0]
        return _text(" ".join(str(p) for p in (first.get("name"), first.get("version")) if p))
    return _text(manifest.get("claim_generator"))


def _state(store: dict, failures: list[str]) -> str:
    state = store.get("validation_state")
    if state == "Trusted":
        return VALID
    if state == "Valid":
        return UNTRUSTED
    if state == "Invalid":
        return INVALID
    # an SDK without validation_state: judge by the codes
    if not failures:
        return VALID
    return UNTRUSTED if set(failures) <= UNTRUSTED_CODES else INVALID


def summarize(store: dict, *, verified: bool = True) -> dict:
    """The short summary of a manifest store (``Reader.json()``): the active manifest's issuer,
    signer, time, generator, title, assertion labels and actions, and the validation verdict
    (``unverified`` when the store was read without checking it)."""
    manifests = store.get("manifests") or {}
    manifest = manifests.get(store.get("active_manifest")) or {}
    signature = manifest.get("signature_info") or {}
    assertions = [a for a in manifest.get("assertions") or [] if isinstance(a, dict)]
    failures = sorted(
        {str(s["code"]) for s in store.get("validation_status") or [] if isinstance(s, dict) and s.get("code")}
    )
    actions = _actions(assertions)
    source_types = [a["digital_source_type"] for a in actions if a["digital_source_type"]]
    labels = list(dict.fromkeys(_text(a.get("label")) for a in assertions if a.get("label")))
    generator = _claim_generator(manifest)
    state = _state(store, failures) if verified else UNVERIFIED
    return empty(
        state,
        present=True,
        # the signing certificate's organization ("OpenAI", "Google LLC"); else its name, else the tool
        issuer=_text(signature.get("issuer")) or _text(signature.get("common_name")) or generator,
        signer=_text(signature.get("common_name")),
        signed_at=_text(signature.get("time")),  # a time-stamp authority's time, when signed with one
        claim_generator=generator,
        title=_text(manifest.get("title")),
        ai_generated=bool(set(source_types) & AI_SOURCE_TYPES) if source_types else None,
        digital_source_type=source_types[0] if source_types else None,
        actions=actions,
        assertions=labels[:MAX_LABELS],
        failures=failures[:MAX_FAILURES] if state in (UNTRUSTED, INVALID) else [],
        manifests=len(manifests),
    )


def checked(summary: dict) -> dict:
    """``summary`` stamped with when it was read (kept on the row)."""
    return {**summary, "checked_at": datetime.now(UTC).isoformat(timespec="seconds")}


def api_object(stored: dict) -> dict | None:
    """The native API's ``content_credentials`` object: None until read, else every key."""
    if not stored:
        return None
    shape = empty(stored.get("state") or UNREADABLE)
    return {key: stored.get(key, default) for key, default in shape.items()} | {"checked_at": stored.get("checked_at")}
