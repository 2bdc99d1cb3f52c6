"""Signed link tokens: they round-trip, they are short, and any edit, other purpose, expiry or
dropped secret is a TokenError; no input makes `verify` raise anything else."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from syndicate import tokens
from syndicate.errors import SyndicateError
from syndicate.tokens import Claims, TokenError, sign, verify

SECRET = "current-secret-3f9c"
OLD = "old-secret-77aa"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
ADDRESS = "reporter@example.org"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def unsubscribe(
    secret: str = SECRET, *, address: str = ADDRESS, expires: datetime | None = None
) -> str:
    return sign(secret, "unsubscribe", address, "weekly", issued=NOW, expires=expires)


def raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def encoded(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def reason(token: object, secrets: list[str] | None = None, purpose: str = "unsubscribe") -> str:
    with pytest.raises(TokenError) as caught:
        verify(token, secrets or [SECRET], purpose, NOW)  # type: ignore[arg-type]
    return caught.value.reason


@pytest.mark.parametrize("purpose", ["confirm", "unsubscribe", "manage"])
def test_a_token_round_trips_its_claims(purpose: str) -> None:
    expires = NOW + timedelta(days=7)
    token = sign(SECRET, purpose, ADDRESS, "weekly", issued=NOW, expires=expires)
    assert verify(token, [SECRET], purpose, NOW) == Claims(ADDRESS, "weekly", purpose, NOW, expires)


def test_a_token_without_expiry_never_expires() -> None:
    claims = verify(unsubscribe(), [SECRET], "unsubscribe", datetime(9999, 1, 1, tzinfo=UTC))
    assert claims.expires is None


def test_claims_are_utc_whatever_zone_the_times_were_given_in() -> None:
    istanbul = timezone(timedelta(hours=3))
    token = sign(
        SECRET,
        "confirm",
        ADDRESS,
        "weekly",
        issued=NOW.astimezone(istanbul),
        expires=(NOW + timedelta(days=7)).astimezone(istanbul),
    )
    claims = verify(token, [SECRET], "confirm", NOW)
    assert claims.issued == NOW and claims.issued.tzinfo is UTC
    assert claims.expires is not None and claims.expires.tzinfo is UTC


def test_a_token_is_url_safe_unpadded_and_keeps_an_unsubscribe_link_short() -> None:
    token = unsubscribe()
    assert set(token) <= set(ALPHABET)
    assert len(f"https://press.example.org/news/unsubscribe/{token}") < 120


def test_an_international_address_round_trips() -> None:
    token = unsubscribe(address="gülşen@örnek.com.tr")
    assert verify(token, [SECRET], "unsubscribe", NOW).address == "gülşen@örnek.com.tr"


def test_changing_any_character_is_rejected() -> None:
    token = unsubscribe()
    for index, char in enumerate(token):
        for other in ALPHABET:
            if other != char:
                edited = token[:index] + other + token[index + 1 :]
                assert reason(edited) in ("malformed", "signature"), (index, other)


def test_flipping_any_bit_of_the_decoded_token_is_rejected() -> None:
    data = raw(unsubscribe(expires=NOW + timedelta(days=1)))
    for index in range(len(data)):
        for bit in range(8):
            edited = bytearray(data)
            edited[index] ^= 1 << bit
            assert reason(encoded(bytes(edited))) in ("malformed", "signature")


EDITS: list[Callable[[str], str]] = [lambda t: t[:-1], lambda t: t + "A", lambda t: t[1:]]


@pytest.mark.parametrize("edit", EDITS)
def test_a_truncated_or_extended_token_is_rejected(edit: Callable[[str], str]) -> None:
    assert reason(edit(unsubscribe())) in ("malformed", "signature")


def test_a_token_for_one_purpose_is_refused_for_another() -> None:
    token = sign(SECRET, "confirm", ADDRESS, "weekly", issued=NOW, expires=None)
    assert reason(token, purpose="unsubscribe") == "purpose"
    assert reason(unsubscribe(), purpose="manage") == "purpose"


def test_a_token_cannot_be_moved_to_another_list_or_address() -> None:
    data = raw(unsubscribe())
    other_list = data.replace(b"weekly", b"alerts")
    other_address = data.replace(b"reporter@", b"attacker@")
    assert other_list != data and other_address != data
    assert reason(encoded(other_list)) == "signature"
    assert reason(encoded(other_address)) == "signature"


def test_the_purpose_byte_cannot_be_swapped() -> None:
    data = bytearray(raw(unsubscribe()))
    data[1:2] = tokens.PURPOSES["confirm"]
    assert reason(encoded(bytes(data)), purpose="confirm") == "signature"


def test_a_token_is_valid_up_to_one_second_before_it_expires() -> None:
    expires = NOW + timedelta(days=7)
    token = unsubscribe(expires=expires)
    assert verify(token, [SECRET], "unsubscribe", expires - timedelta(seconds=1))
    for late in (expires, expires + timedelta(seconds=1)):
        with pytest.raises(TokenError, match="expired") as caught:
            verify(token, [SECRET], "unsubscribe", late)
        assert caught.value.reason == "expired"


def test_expiry_is_truncated_to_the_second_never_extended() -> None:
    expires = NOW + timedelta(days=1)
    token = unsubscribe(expires=expires + timedelta(milliseconds=999))
    assert verify(token, [SECRET], "unsubscribe", NOW).expires == expires


def test_a_token_signed_with_an_old_secret_in_the_grace_list_is_accepted() -> None:
    token = unsubscribe(OLD)
    assert verify(token, [SECRET, OLD], "unsubscribe", NOW).address == ADDRESS


def test_dropping_an_old_secret_revokes_its_tokens() -> None:
    assert reason(unsubscribe(OLD), [SECRET]) == "signature"


def test_tokens_signed_with_the_current_secret_survive_rotation_into_the_grace_list() -> None:
    token = unsubscribe(SECRET)
    assert verify(token, ["newer-secret", SECRET], "unsubscribe", NOW).list_slug == "weekly"


GARBAGE: list[object] = [
    "",
    " ",
    "A",
    "AA",
    "AAAA",
    "====",
    "\x00",
    "é" * 80,
    "🙂" * 40,
    "a" * 1_000_000,
    "A" * 74,
    "_" * 75,
    "not a token at all",
    "QUJD\n",
    "%41%42",
    None,
    b"AXUAawf1EAAAAAAABndlZWtseQ",
    74,
]


@pytest.mark.parametrize("token", GARBAGE, ids=lambda t: repr(t)[:20])
def test_garbage_is_a_token_error_and_never_another_exception(token: object) -> None:
    assert reason(token) in ("malformed", "signature")


def test_padding_whitespace_or_a_trailing_newline_make_a_token_malformed() -> None:
    token = unsubscribe()
    for edited in (token + "=", token + "==", f" {token}", f"{token}\n", f"{token}\r\n"):
        assert reason(edited) == "malformed"


def test_a_correctly_signed_but_inconsistent_payload_is_malformed() -> None:
    """Only a leaked secret could produce one; it must still not crash the caller."""
    header = bytes((1,)) + b"u" + (0).to_bytes(5, "big") + (2**40 - 1).to_bytes(5, "big")
    for payload in (
        header + bytes((200,)) + b"weekly" + b"x@y",  # slug longer than what follows
        header + bytes((6,)) + b"weekly" + b"x@y",  # expires beyond datetime's range
        header[:1] + b"z" + header[2:] + bytes((6,)) + b"weekly" + b"x@y",  # unknown purpose
        header[:7] + bytes(5) + bytes((1,)) + b"w" + b"\xff\xfe",  # address not UTF-8
    ):
        token = encoded(payload + tokens._tag(SECRET.encode(), payload))
        assert reason(token) == "malformed"


def test_token_error_belongs_to_the_family_and_is_a_value_error() -> None:
    assert issubclass(TokenError, SyndicateError)
    assert issubclass(TokenError, ValueError)


@pytest.mark.parametrize(
    ("secret", "purpose", "issued", "expires"),
    [
        ("", "unsubscribe", NOW, None),
        (SECRET, "delete", NOW, None),
        (SECRET, "confirm", datetime(2026, 11, 26, 9, 0), None),
        (SECRET, "confirm", NOW, NOW),
        (SECRET, "confirm", NOW, NOW - timedelta(days=1)),
    ],
)
def test_signing_refuses_programming_mistakes(
    secret: str, purpose: str, issued: datetime, expires: datetime | None
) -> None:
    with pytest.raises(ValueError) as caught:
        sign(secret, purpose, ADDRESS, "weekly", issued=issued, expires=expires)
    assert not isinstance(caught.value, TokenError)


def test_verify_refuses_a_bare_string_as_the_list_of_secrets() -> None:
    with pytest.raises(ValueError, match="sequence"):
        verify(unsubscribe(), SECRET, "unsubscribe", NOW)
    with pytest.raises(ValueError, match="sequence"):
        verify(unsubscribe(), [], "unsubscribe", NOW)
