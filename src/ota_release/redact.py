"""No secret reaches a log line: scrubbing at the logging boundary.

Two nets, both applied to every line the function's process writes through ``logging``:

- by value: the credentials the function holds (access key secret, STS token) are
  :func:`remember`-ed when they are read, and every spelling of them a request could carry
  (as is, percent-encoded once or twice) is replaced wherever it appears;
- by shape: signatures and tokens the function never held as such (a signed URL's
  ``Signature=``/``x-oss-signature=``, ``security-token=``/``SecurityToken=``, an
  ``Authorization`` header, ``AccessKeySecret`` values) are replaced by the parameter's name
  followed by :data:`REDACTED`, in query strings, percent-encoded URLs inside other URLs,
  headers, dict reprs and JSON.

:func:`install` puts :func:`scrub` in front of every ``LogRecord`` the process creates
(message, arguments, the formatted traceback with its chained exceptions, stack info), so
the SDKs' own loggers (urllib3, requests, oss2, fc2, mns) are covered whatever handler
prints them; the function's JSON formatter (``function.RedactingFormatter``) scrubs its
lines once more as they are written, because it renders exceptions itself.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "***"
#: Shorter values are not scrubbed by value: they would blank out ordinary words.
MIN_SECRET_LENGTH = 8

# A name starts a word, or follows a percent-encoded '?' or '&' (a URL inside a URL).
_SENSITIVE_NAME = (
    r"(?:(?<=%3[Ff])|(?<=%26)|(?<=%253[Ff])|(?<=%2526)|(?<![A-Za-z0-9_-]))"
    r"(?:x-(?:oss|acs|mns)-)?"
    r"(?:signature|security[-_]?token|access[-_]?key[-_]?secret)"
)
# name, then '=' / ':' (possibly quoted or percent-encoded once or twice), then the value up
# to the next separator of a query string, header list, dict repr or JSON document.
_PARAM = re.compile(
    rf"(?P<name>{_SENSITIVE_NAME})"
    r"(?P<sep>\\?[\"']?\s*(?:=|:|%3[Dd]|%253[Dd])\s*\\?[\"']?)"
    r"(?P<value>(?:%(?!26|2526|22|27|2C|2c)[0-9A-Fa-f]{2}|[^\s&'\",;)}\]<>%\\])+)",
    re.IGNORECASE,
)
_AUTHORIZATION = re.compile(
    r"(?P<name>(?:proxy-)?authorization\\?[\"']?\s*[:=]\s*\\?[\"']?)(?P<value>[^\"'\r\n\\]+)",
    re.IGNORECASE,
)
# "OSS <id>:<signature>" and its MNS/FC/ACS siblings, wherever they appear without a name.
_SCHEME = re.compile(r"\b(?P<scheme>OSS|MNS|FC|ACS) (?P<id>[\w.\-]+):[A-Za-z0-9+/]{16,}={0,2}")

#: Remembered values kept at most: an instance lives for hours while STS credentials
#: rotate, and a value the function no longer holds cannot appear in a new line anyway.
MAX_REMEMBERED = 16

_lock = threading.Lock()
_remembered: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first
_known: tuple[str, ...] = ()


def remember(*values: str | None) -> None:
    """Scrub these values (and their percent-encoded spellings) from now on."""
    global _known
    with _lock:
        for value in values:
            if value and len(value) >= MIN_SECRET_LENGTH:
                _remembered.pop(value, None)
                _remembered[value] = None
        while len(_remembered) > MAX_REMEMBERED:
            del _remembered[next(iter(_remembered))]
        spellings = set()
        for value in _remembered:
            once = quote(value, safe="")
            spellings.update({value, once, quote_plus(value), quote(once, safe="")})
        # Longest first, so a value is replaced before any shorter value inside it.
        _known = tuple(sorted(spellings, key=len, reverse=True))


def forget_all() -> None:
    """Drop every remembered value (tests)."""
    global _known
    with _lock:
        _remembered.clear()
        _known = ()


def scrub(text: str) -> str:
    """``text`` with every remembered secret, signature, token and Authorization blanked."""
    for secret in _known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _AUTHORIZATION.sub(lambda m: m.group("name") + REDACTED, text)
    text = _SCHEME.sub(lambda m: f"{m.group('scheme')} {m.group('id')}:{REDACTED}", text)
    return _PARAM.sub(lambda m: m.group("name") + m.group("sep") + REDACTED, text)


def _format_exception(exc_info: Any) -> str:
    text = "".join(traceback.format_exception(*exc_info))
    return text[:-1] if text.endswith("\n") else text


def _scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    if isinstance(record.msg, str) or record.args:
        try:
            message = record.getMessage()
        except Exception:  # a malformed %-format: keep what logging itself would show
            message = str(record.msg)
        record.msg, record.args = scrub(message), ()
    else:  # a structured message (a dict for the JSON logger) stays one unless it leaks
        text = str(record.msg)
        if scrub(text) != text:
            record.msg = scrub(text)
    if record.exc_info and record.exc_info[0] is not None:
        # Formatters print the cached text instead of formatting the chain again.
        record.exc_text = scrub(_format_exception(record.exc_info))
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    return record


_installed = False


def install() -> None:
    """Scrub every log record this process creates from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return _scrub_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True
