"""Email addresses: validated (no DNS look-ups), normalised, and never carrying CR or LF."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A display name and an address, e.g. 'IOM Türkiye Press <press@example.org>'."""

    address: str
    name: str = ""

    def __str__(self) -> str:
        """RFC 5322 form; the name is quoted or encoded by the email package as needed."""
        if not self.name:
            return self.address
        local, _, domain = self.address.rpartition("@")
        return str(Address(display_name=self.name, username=local, domain=domain))


# Plain ASCII addresses, the vast majority: a dot-atom local part and LDH labels under a
# letters-only top-level domain. What this accepts, email-validator accepts alike (a test
# checks); anything else takes the full validation.
_PLAIN = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)  # single labels: top-level domains here


def normalise_address(text: str) -> str:
    """'  Desk@Example.COM ' → 'Desk@example.com': the domain is case-insensitive, the local
    part is kept as written (RFC 5321 lets servers tell cases apart)."""
    return plain_address(text) or validated_address(text)


def plain_address(text: str) -> str | None:
    """The normalised address when it is plainly valid ASCII (checked in microseconds: list
    files hold hundreds of thousands); None when only full validation can tell."""
    text = text.strip(" ")  # only spaces: any control character takes the full path
    plain = _PLAIN.fullmatch(text)
    if plain is None or len(text) > 254 or text.index("@") > 64:
        return None
    domain = plain.group(1).lower()
    if "--" in domain or domain.rpartition(".")[2] in _SPECIAL_USE:
        return None
    return f"{text[: plain.start(1)]}{domain}"


def validated_address(text: str) -> str:
    """Full validation by email-validator (no DNS look-ups); ValueError says what is wrong."""
    if _UNSAFE.search(text):
        raise ValueError("an address may not contain control characters or line breaks")
    try:
        valid = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{text.strip()!r} is not a valid email address: {exc}") from None
    return f"{valid.local_part}@{valid.domain.lower()}"


def parse_mailbox(text: str) -> Mailbox:
    """'Name <addr>' or a bare 'addr'."""
    if _UNSAFE.search(text):
        raise ValueError("a mailbox may not contain control characters or line breaks")
    if "<" not in text:  # a bare address: parseaddr would quietly keep only its first word
        return Mailbox(normalise_address(text))
    name, address = parseaddr(text)
    if not address:
        raise ValueError(f"{text!r} is not an address such as 'Press Office <press@example.org>'")
    return Mailbox(normalise_address(address), name.strip())
