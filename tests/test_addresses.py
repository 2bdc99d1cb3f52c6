"""Addresses: the fast path for plain ASCII addresses agrees with full validation."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from syndicate.addresses import normalise_address, plain_address, validated_address

LABEL = st.text("abcXYZ019-", min_size=1, max_size=70)
LOCAL = st.text("abcXYZ09.!#$%&'*+/=?^_`{|}~-\"(), ", min_size=1, max_size=70)
TLD = st.sampled_from(["org", "COM", "test", "local", "io", "x", "123", "xn--p1ai", "a-b", ""])


@st.composite
def addresses(draw: st.DrawFn) -> str:
    labels = draw(st.lists(LABEL, min_size=0, max_size=4))
    domain = ".".join([*labels, draw(TLD)])
    space = draw(st.sampled_from(["", " ", "\t"]))
    return f"{space}{draw(LOCAL)}@{domain}{space}"


@settings(max_examples=1500, deadline=None)
@given(addresses())
@example("reader000001@example.org")
@example("Desk@Example.COM")
@example("a..b@example.org")
@example(".a@example.org")
@example("a@-example.org")
@example("a@example-.org")
@example("a@localhost.test")
@example("a@example.123")
@example(("x" * 64) + "@example.org")
@example(("x" * 65) + "@example.org")
@example("a@" + ("x" * 63) + ".org")
@example("a@" + ("x" * 64) + ".org")
@example("a@" + ".".join(["x" * 60] * 5) + ".org")
def test_what_the_fast_path_accepts_full_validation_accepts_alike(text: str) -> None:
    fast = plain_address(text)
    if fast is None:
        return
    assert validated_address(text) == fast


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Desk@Example.COM ", "Desk@example.com"),
        ("müge@example.org", "müge@example.org"),
        ("a@xn--80ak6aa92e.com", "a@аррӏе.com"),  # punycode is shown decoded
    ],
)
def test_normalised_forms(text: str, expected: str) -> None:
    assert normalise_address(text) == expected


@pytest.mark.parametrize("text", ["a@b", "a@localhost", "a@x.test", "a b@example.org", "@x.org"])
def test_invalid_addresses_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError, match="not a valid email address"):
        normalise_address(text)
