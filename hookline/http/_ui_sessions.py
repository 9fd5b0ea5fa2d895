"""The web UI's signed-in sessions, held by the server.

The session cookie is signed, so the browser cannot forge one; but a signed cookie alone
stays valid wherever a copy of it went. Each sign-in therefore opens a session id that
the server keeps; the cookie carries it, and a request counts as signed in only while
the server still holds that id. Signing out drops it: a copy of the cookie taken before
then is refused. Sessions also end after ``lifetime`` seconds, and with the process
(like the default signing key).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

__all__ = ["DEFAULT_LIFETIME", "SessionRegistry"]

DEFAULT_LIFETIME = 12 * 3600.0
DEFAULT_LIMIT = 10_000


class SessionRegistry:
    """The live session ids of one server process, each with its expiry.

    At most ``limit`` are held: opening one more ends the oldest. ``clock`` gives
    seconds (default :func:`time.monotonic`).
    """

    def __init__(
        self,
        *,
        lifetime: float = DEFAULT_LIFETIME,
        limit: int = DEFAULT_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lifetime = lifetime
        self.limit = limit
        self._clock = clock
        # Opened in order and all with the same lifetime: the first one ends first.
        self._expiry: dict[str, float] = {}

    def open(self) -> str:
        """A new session id, live for ``lifetime`` seconds or until :meth:`close`."""
        now = self._clock()
        self._drop_expired(now)
        while len(self._expiry) >= self.limit:
            del self._expiry[next(iter(self._expiry))]
        sid = secrets.token_urlsafe(32)
        self._expiry[sid] = now + self.lifetime
        return sid

    def is_live(self, sid: object) -> bool:
        """Whether ``sid`` (as read from a cookie: anything) is an open session."""
        if not isinstance(sid, str):
            return False
        expiry = self._expiry.get(sid)
        if expiry is None:
            return False
        if expiry <= self._clock():
            del self._expiry[sid]
            return False
        return True

    def close(self, sid: object) -> None:
        """End session ``sid``; an unknown or ended one is ignored."""
        if isinstance(sid, str):
            self._expiry.pop(sid, None)

    def __len__(self) -> int:
        return len(self._expiry)

    def _drop_expired(self, now: float) -> None:
        while self._expiry:
            first, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                return
            del self._expiry[first]
