"""Email addresses: validated (no DNS look-ups), normalised, and never carrying CR or LF."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr

from email_validator import EmailNotValidError, validate_email

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


def normalise_address(text: str) -> str:
    """'  Desk@Example.COM ' → 'Desk@example.com': the domain is case-insensitive, the local
    part is kept as written (RFC 5321 lets servers tell cases apart)."""
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
