"""Keep the one-time secrets that travel in URLs out of the logs.

Invitation links (``/invite/<token>/``), password-reset links (``/password/reset/<uidb64>/<token>/``)
and share links (``/s/<token>/``) are credentials: whoever reads them in a log could join an
organization, take over an account or watch a shared video.
They reach logs through request lines, referers, ``?next=`` parameters and redirect ``Location``s.

- Django's logging (``LOGGING`` in settings.py): :class:`RedactSecretsFilter` on the console handler
  and on the ``django.request`` / ``django.server`` loggers.
- gunicorn's access and error logs: ``gunicorn --logger-class mediarouter.logging.GunicornLogger``.

No Django import here: gunicorn loads the logger class before the application.
"""

from __future__ import annotations

import logging
import re

from gunicorn import glogging
from pythonjsonlogger import json as jsonlogger
from pythonjsonlogger.core import RESERVED_ATTRS

REDACTED = "[redacted]"

_SEP = r"(?:/|%2[Ff])"  # a slash, plain or percent-encoded (in ?next=… and referers)
_SEGMENT = r"[A-Za-z0-9_\-]+"  # token_urlsafe, Django's reset tokens and base64 user ids
_INVITE = re.compile(rf"({_SEP}invite{_SEP}){_SEGMENT}")
_RESET = re.compile(rf"({_SEP}password{_SEP}reset{_SEP})({_SEGMENT})({_SEP})({_SEGMENT})")
# provider callback URLs (/hooks/providers/<slug>/<token>, apps/generations/callbacks.py)
_HOOK = re.compile(rf"({_SEP}hooks{_SEP}providers{_SEP}{_SEGMENT}{_SEP}){_SEGMENT}")
# share links (/s/<token>/, /s/<token>/video, apps/sharing)
_SHARE = re.compile(rf"({_SEP}s{_SEP}){_SEGMENT}")


def _reset(match: re.Match) -> str:
    prefix, _uid, sep, token = match.groups()
    # Django swaps the token for "set-password" after the first visit; that word is no secret
    return f"{prefix}{REDACTED}{sep}{token if token == 'set-password' else REDACTED}"


def redact(text: str) -> str:
    """``text`` with the secret parts of invitation, password-reset, callback and share URLs replaced."""
    if "invite" not in text and "reset" not in text and "hooks" not in text and "s/" not in text and "s%2" not in text:
        return text
    text = _HOOK.sub(rf"\1{REDACTED}", _RESET.sub(_reset, _INVITE.sub(rf"\1{REDACTED}", text)))
    return _SHARE.sub(rf"\1{REDACTED}", text)


class RedactSecretsFilter(logging.Filter):
    """Rewrites a record's message (and its formatted traceback) without the URL secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed call: the handler reports it, as without us
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class GunicornLogger(glogging.Logger):
    """gunicorn's logger with every access-log atom (request line, path, query, referer, headers)
    and every error-log message redacted."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        if not any(isinstance(f, RedactSecretsFilter) for f in self.error_log.filters):
            self.error_log.addFilter(RedactSecretsFilter())

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        return {name: redact(value) if isinstance(value, str) else value for name, value in atoms.items()}


class JsonFormatter(jsonlogger.JsonFormatter):
    """``LOG_FORMAT=json``: python-json-logger's one object a line, redacted like the plain format.

    The whole line is redacted, not just the message: the formatter renders a traceback from
    ``exc_info`` itself (not from the filter's redacted ``exc_text``) and adds a record's extra
    attributes as fields. Django's ``request`` extra (an ``HttpRequest``, its path included) is left
    out; ``status_code`` stays."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request", "server_time"])
        super().__init__(*args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
