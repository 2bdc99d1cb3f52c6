"""Signed, expiring tokens for the confirm, unsubscribe and manage links in emails, and for
the subscribe form's CSRF token.

A token is one URL-safe base64 string (no padding) of

    version 1 byte | purpose 1 byte | issued 5 bytes | expires 5 bytes (0 = never)
    | length of list slug 1 byte | list slug | address | tag 16 bytes

where times are Unix seconds, big-endian, text is UTF-8, and the tag is HMAC-SHA256 over a
fixed context string plus everything before it, truncated to 128 bits (ample for a MAC: a forger
must guess it online, one request per try). The purpose, list and address are all under the
tag, so a token cannot be replayed for another list or purpose, nor edited to another address.
They are signed, not encrypted: the address is readable by whoever holds the link, which is its
own subscriber. A typical unsubscribe token is about 75 characters.

Rotation: `verify` accepts a token signed with any of `secrets` (the current one first, then a
grace list of old ones); dropping an old secret revokes every token it signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from syndicate.errors import SyndicateError

Purpose = Literal["confirm", "unsubscribe", "manage", "form"]
Reason = Literal["malformed", "signature", "purpose", "expired"]

# "form" signs the subscribe form's CSRF token: its "address" is a random nonce.
PURPOSES: dict[str, bytes] = {"confirm": b"c", "unsubscribe": b"u", "manage": b"m", "form": b"f"}
_NAMES = {code: name for name, code in PURPOSES.items()}
_VERSION = 1
_CONTEXT = b"syndicate.tokens.v1\0"  # the same secret may sign other things one day
_TIME = 5  # bytes: seconds up to the year 36812
_HEADER = 2 + 2 * _TIME + 1
_TAG = 16
_MAX_SLUG = 255
_MAX_ADDRESS = 512
_MAX_LENGTH = (_HEADER + _MAX_SLUG + _MAX_ADDRESS + _TAG) * 4 // 3 + 4
_BASE64 = re.compile(r"[A-Za-z0-9_-]+")


class TokenError(SyndicateError, ValueError):
    """A link's token is not valid now; `reason` says why, the message tells the reader."""

    def __init__(self, message: str, reason: Reason) -> None:
        super().__init__(message)
        self.reason: Reason = reason


@dataclass(frozen=True, slots=True)
class Claims:
    """What a valid token vouches for. Times are UTC, to the second; `expires` None = never."""

    address: str
    list_slug: str
    purpose: str
    issued: datetime
    expires: datetime | None


def sign(
    secret: str,
    purpose: str,
    address: str,
    list_slug: str,
    *,
    issued: datetime,
    expires: datetime | None,
) -> str:
    """A token for `purpose` on `list_slug` for `address`. Times are truncated to the second;
    the token is valid while `now < expires`."""
    if not secret:
        raise ValueError("cannot sign a token with an empty secret; set mail.secret")
    code = _purpose_code(purpose)
    slug = list_slug.encode()
    mailbox = address.encode()
    if not 0 < len(slug) <= _MAX_SLUG:
        raise ValueError(f"list slug must be 1 to {_MAX_SLUG} bytes, got {list_slug!r}")
    if not 0 < len(mailbox) <= _MAX_ADDRESS:
        raise ValueError(f"address must be 1 to {_MAX_ADDRESS} bytes, got {address!r}")
    start = _seconds(issued, "issued")
    end = 0 if expires is None else _seconds(expires, "expires")
    if expires is not None and end <= start:
        raise ValueError("a token must expire after it is issued")
    payload = b"".join(
        (
            bytes((_VERSION,)),
            code,
            start.to_bytes(_TIME, "big"),
            end.to_bytes(_TIME, "big"),
            bytes((len(slug),)),
            slug,
            mailbox,
        )
    )
    return _encode(payload + _tag(secret.encode(), payload))


def verify(token: str, secrets: Sequence[str], purpose: str, now: datetime) -> Claims:
    """The claims of `token` if it was signed with one of `secrets` for `purpose` and has not
    expired at `now`; otherwise TokenError, whatever the input (never another exception)."""
    code = _purpose_code(purpose)
    if isinstance(secrets, str) or not secrets or not all(secrets):
        raise ValueError("verify needs a non-empty sequence of non-empty secrets")
    _seconds(now, "now")
    raw = _decode(token)
    payload, tag = raw[:-_TAG], raw[-_TAG:]
    if payload[0] != _VERSION:
        raise _malformed()
    if not any(hmac.compare_digest(_tag(key.encode(), payload), tag) for key in secrets):
        raise TokenError(
            "This link is not valid: it was altered, or it has been revoked. "
            "Use the latest link we sent you.",
            "signature",
        )
    claims = _parse(payload)
    if claims.purpose != _NAMES[code]:
        raise TokenError(
            f"This link is for '{claims.purpose}', not '{_NAMES[code]}'; "
            "use the matching link from the email.",
            "purpose",
        )
    if claims.expires is not None and now >= claims.expires:
        raise TokenError(
            f"This link expired at {claims.expires:%Y-%m-%d %H:%M} UTC; request a new one.",
            "expired",
        )
    return claims


def _purpose_code(purpose: str) -> bytes:
    code = PURPOSES.get(purpose)
    if code is None:
        raise ValueError(f"unknown token purpose {purpose!r}; expected one of {list(PURPOSES)}")
    return code


def _seconds(moment: datetime, name: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    seconds = int(moment.timestamp() // 1)
    if not 0 <= seconds < 1 << (8 * _TIME):
        raise ValueError(f"{name} is out of range: {moment.isoformat()}")
    return seconds


def _tag(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _CONTEXT + payload, hashlib.sha256).digest()[:_TAG]


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _malformed() -> TokenError:
    return TokenError(
        "This link is damaged or incomplete; copy the whole link from the email.", "malformed"
    )


def _decode(token: object) -> bytes:
    """The raw bytes of a canonical token: one spelling per token, so no edit of any
    character leaves the same bytes (base64's spare low bits could otherwise hide one)."""
    if (
        not isinstance(token, str)
        or not token.isascii()
        or not _BASE64.fullmatch(token)
        or len(token) > _MAX_LENGTH
    ):
        raise _malformed()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise _malformed() from None
    if len(raw) < _HEADER + 2 + _TAG or _encode(raw) != token:
        raise _malformed()
    return raw


def _parse(payload: bytes) -> Claims:
    """Fields of a payload whose tag matched (so written by `sign`, bar a leaked secret)."""
    code = payload[1:2]
    start = int.from_bytes(payload[2 : 2 + _TIME], "big")
    end = int.from_bytes(payload[2 + _TIME : 2 + 2 * _TIME], "big")
    size = payload[_HEADER - 1]
    slug, mailbox = payload[_HEADER : _HEADER + size], payload[_HEADER + size :]
    if code not in _NAMES or len(slug) != size or not slug or not mailbox:
        raise _malformed()
    try:
        return Claims(
            address=mailbox.decode(),
            list_slug=slug.decode(),
            purpose=_NAMES[code],
            issued=datetime.fromtimestamp(start, UTC),
            expires=datetime.fromtimestamp(end, UTC) if end else None,
        )
    except (UnicodeDecodeError, OverflowError, ValueError, OSError):
        raise _malformed() from None
