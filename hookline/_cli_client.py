"""What the admin commands share: a client of a running server's admin API, the
``--url``/``--key``/``--json`` options, and output helpers (rich tables, JSON)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click
import httpx
from rich.console import Console
from rich.table import Table

__all__ = [
    "STATUS_STYLES",
    "AdminClient",
    "admin_options",
    "console",
    "print_json",
    "styled",
    "table",
    "took",
    "when",
]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_URL = "http://127.0.0.1:8000"
STATUS_STYLES = {
    "succeeded": "green",
    "accepted": "green",
    "enabled": "green",
    "failed": "bold red",
    "rejected": "red",
    "running": "blue",
    "queued": "cyan",
    "throttled": "cyan",
    "waiting": "magenta",
    "cancelled": "yellow",
    "timed_out": "yellow",
    "duplicate": "yellow",
    "skipped": "dim",
    "not_run": "dim",
    "disabled": "dim",
}


class AdminClient:
    """The admin API of the server at ``url``, authenticated with ``key`` (when given).

    Every method returns the parsed JSON answer; a refused request raises
    :class:`click.ClickException` with the problem's status, title, detail and field,
    and so does a server that cannot be reached.
    """

    def __init__(
        self, url: str, key: str | None = None, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self.url = url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.url, headers=headers, timeout=30.0, transport=transport
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        json_body: Any = None,
        content_type: str | None = None,
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        headers = {"content-type": content_type} if content_type else {}
        try:
            response = self._client.request(
                method, path, params=query, content=content, json=json_body, headers=headers
            )
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise click.ClickException(_problem_text(response))
        if not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str) -> Any:
        return self.request("POST", path)


def _problem_text(response: httpx.Response) -> str:
    try:
        problem = response.json()
    except ValueError:
        return f"{response.status_code}: {response.text[:200]}"
    if not isinstance(problem, dict):
        return f"{response.status_code}: {problem}"
    text = f"{response.status_code} {problem.get('title', '')}: {problem.get('detail', '')}"
    if problem.get("field"):
        text += f" (field {problem['field']})"
    return text


def admin_options(command: F) -> F:
    """Add ``--url``, ``--key`` and ``--json`` to ``command``; it receives ``client``
    (an :class:`AdminClient`) and ``as_json`` instead of the first two. Apply it
    below the command decorator and above the command's own options."""

    def wrapper(url: str, admin_key: str | None, **kwargs: Any) -> Any:
        return command(client=AdminClient(url, admin_key), **kwargs)

    decorated: Any = wrapper
    decorated.__name__ = command.__name__
    decorated.__doc__ = command.__doc__
    # The command's own arguments and options, declared below this decorator.
    decorated.__click_params__ = list(getattr(command, "__click_params__", []))
    for option in (
        click.option("--json", "as_json", is_flag=True, help="Print the API's JSON, for scripts."),
        click.option(
            "--key",
            "admin_key",
            envvar="HOOKLINE_ADMIN_KEY",
            help="Admin key (or HOOKLINE_ADMIN_KEY).",
        ),
        click.option(
            "--url",
            envvar="HOOKLINE_URL",
            default=DEFAULT_URL,
            show_default=True,
            help="The server (or HOOKLINE_URL).",
        ),
    ):
        decorated = option(decorated)
    result: F = decorated
    return result


def console() -> Console:
    """A console on the current stdout (tests swap it); no colour when not a terminal."""
    return Console(soft_wrap=False, width=160)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def styled(status: str | None) -> str:
    if not status:
        return "—"
    style = STATUS_STYLES.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def when(at: float | None) -> str:
    if at is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def took(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], *, title: str | None = None
) -> None:
    """Print a rich table of ``rows`` (markup allowed in cells)."""
    grid = Table(*columns, title=title, header_style="bold", show_lines=False)
    for row in rows:
        grid.add_row(*row)
    console().print(grid)
