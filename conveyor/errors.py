"""The error of everything release-related: a request, a format or a state that cannot be
used; its message says why, in words a requester acts on."""


class ReleaseError(ValueError):
    """A release operation that cannot be done; the message says why."""
