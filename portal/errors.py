"""The portal's one error type: a page with a status and a message, never a traceback."""

from __future__ import annotations


class PageError(Exception):
    """Ends a request with an error page. ``heading`` names the page (sign-in failed by default);
    ``relogin`` offers a link to sign in again; ``back`` is the (path, label) of the page to go back to (the
    personal data store by default)."""

    def __init__(
        self,
        status: int,
        message: str,
        reason: str,
        heading: str = "",
        relogin: bool = False,
        back: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status, self.message, self.reason = status, message, reason
        self.heading, self.relogin, self.back = heading, relogin, back
