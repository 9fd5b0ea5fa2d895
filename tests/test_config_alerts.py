"""The server config's alerts: section: rules, where notices go, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookline._config import load_config
from hookline.engine._alerts import AlertRule
from hookline.errors import ConfigError


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hookline.yaml"
    path.write_text(text)
    return path


def test_rules_and_destinations_load(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        """
alerts:
  chat: env:CHAT_URL
  chat_provider: teams
  email: ops@example.com
  check_every: 30s
  rules:
    - {name: failing, failure_rate: 0.5, min_executions: 3}
    - {name: backlog, workflow: github-push, queue_depth: 500, window: 2m}
    - {name: stuck, oldest_queued: 15m}
""",
    )
    alerts = load_config(path, env={"CHAT_URL": "https://chat.example/hook"}).alerts
    assert alerts.chat_url == "https://chat.example/hook"
    assert alerts.email_to == ("ops@example.com",)
    assert alerts.chat_provider == "teams"
    assert alerts.check_every == 30
    assert alerts.rules == (
        AlertRule("failing", "failure_rate", 0.5, window=300, min_executions=3),
        AlertRule("backlog", "queue_depth", 500, window=120, workflow="github-push"),
        AlertRule("stuck", "oldest_queued", 900, window=0),
    )


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("{rules: [{name: a, failure_rate: 0.5}]}", "alerts.chat"),
        ("{chat: 'ftp://x', rules: []}", "alerts.chat"),
        ("{chat: 'https://x', rules: [{name: a}]}", "alerts.rules[0]"),
        (
            "{chat: 'https://x', rules: [{name: a, queue_depth: 1, failure_rate: 0.5}]}",
            "alerts.rules[0]",
        ),
        (
            "{chat: 'https://x', rules: [{name: a, failure_rate: 2}]}",
            "alerts.rules[0].failure_rate",
        ),
        (
            "{chat: 'https://x', rules: [{name: a, queue_depth: 1}, {name: a, queue_depth: 2}]}",
            "alerts.rules[1].name",
        ),
        ("{email: [not-an-address]}", "alerts.email"),
        ("{chat: 'https://x', chat_provider: irc}", "alerts.chat_provider"),
    ],
)
def test_a_bad_alerts_section_names_its_field(tmp_path: Path, section: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config(tmp_path, f"alerts: {section}\n"), env={})
    assert caught.value.path == field
