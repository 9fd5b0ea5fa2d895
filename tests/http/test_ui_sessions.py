"""The web UI's server-side session ids: opened at sign-in, ended at sign-out or expiry."""

from __future__ import annotations

from hookline.http._ui_sessions import SessionRegistry


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_lives_until_closed() -> None:
    sessions = SessionRegistry(clock=Clock())
    sid = sessions.open()
    assert sessions.is_live(sid)
    sessions.close(sid)
    assert not sessions.is_live(sid)
    sessions.close(sid)  # closing twice is harmless
    assert len(sessions) == 0


def test_a_session_ends_after_its_lifetime() -> None:
    clock = Clock()
    sessions = SessionRegistry(lifetime=60.0, clock=clock)
    early = sessions.open()
    clock.now += 30
    late = sessions.open()
    clock.now += 30
    assert not sessions.is_live(early)
    assert sessions.is_live(late)
    clock.now += 30
    sessions.open()  # opening drops the expired ones
    assert len(sessions) == 1


def test_past_the_limit_the_oldest_session_ends() -> None:
    sessions = SessionRegistry(limit=2, clock=Clock())
    first, second, third = sessions.open(), sessions.open(), sessions.open()
    assert not sessions.is_live(first)
    assert sessions.is_live(second)
    assert sessions.is_live(third)


def test_anything_else_from_a_cookie_is_not_a_session() -> None:
    sessions = SessionRegistry(clock=Clock())
    sessions.open()
    for forged in (None, 1, "", "x" * 43, ["a"]):
        assert not sessions.is_live(forged)
