"""The one exception family: callers catch SyndicateError, users see its message."""


class SyndicateError(Exception):
    """Base of every error syndicate raises on purpose; its message is for the user."""

    exit_code = 1


class ConfigError(SyndicateError, ValueError):
    """The configuration is invalid; the message names file, line and field."""

    exit_code = 2


class ContentError(SyndicateError, ValueError):
    """One release record cannot be read; ingest reports it and moves on."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class SourceError(SyndicateError, OSError):
    """A whole source cannot be read (missing file, unreachable URL, bad encoding)."""


class StoreError(SyndicateError):
    """The release store failed; nothing half-written was committed."""


class MailerError(SyndicateError, OSError):
    """The run cannot go on (wrong host/port, credentials or TLS); the message says which
    server and why. Messages not yet attempted were not reported and are still to send."""


class ListEditError(SyndicateError, ValueError):
    """An edit of a list file was refused; nothing was written. A user mistake: exit 2."""

    exit_code = 2


class InputError(SyndicateError, OSError):
    """A file or folder named on the command line cannot be read. A user mistake: exit 2."""

    exit_code = 2
