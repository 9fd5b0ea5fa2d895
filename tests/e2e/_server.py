"""Starting a real ``hookline serve`` process for end-to-end tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent

# What examples/hookline.yaml and the example workflows read from the environment.
EXAMPLE_ENV = {
    "GITHUB_WEBHOOK_SECRET": "gh-secret",
    "GITLAB_WEBHOOK_TOKEN": "gl-token",
    "SLACK_SIGNING_SECRET": "slack-secret",
    "CRM_WEBHOOK_TOKEN": "crm-token",
    "IOT_DEVICE_TOKEN": "iot-token",
    "WECOM_TOKEN": "wecom-token",
    "WECOM_ENCODING_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "WECOM_CORP_ID": "ww-dev-corp",
    "DINGTALK_APP_SECRET": "dingtalk-app-secret",
    "FEISHU_VERIFICATION_TOKEN": "feishu-token",
    "FEISHU_ENCRYPT_KEY": "feishu-encrypt-key",
    "DEPLOY_URL": "http://127.0.0.1:9/deploy",
    "CHAT_WEBHOOK_URL": "http://127.0.0.1:9/chat",
    "ALERT_URL": "http://127.0.0.1:9/alert",
}


class ServerProcess:
    """``hookline serve`` in a child process on a free port of 127.0.0.1, storing in
    ``store``: a SQLite file, or a store URL (which replaces the config's ``store.url``:
    PostgreSQL)."""

    def __init__(self, config: Path, store: Path | str, env: dict[str, str] | None = None) -> None:
        self.output: list[str] = []
        where = ["--db", str(store)]
        if isinstance(store, str):
            text = re.sub(r'url: "sqlite:[^"]*"', f'url: "{store}"', config.read_text())
            config.write_text(text)
            where = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hookline",
                "serve",
                "--config",
                str(config),
                "--bind",
                "127.0.0.1:0",
                *where,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **EXAMPLE_ENV, **(env or {})},
        )
        self.url = self._wait_for_url()
        # Keep reading the output: a full pipe would block the server's logging.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def _wait_for_url(self, timeout: float = 30.0) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            seen.append(line)
            found = re.search(r"serving .* on (http://127\.0\.0\.1:\d+)", line)
            if found:
                return found.group(1)
        self.process.kill()
        raise RuntimeError("the server did not start:\n" + "".join(seen))

    def stop(self, sig: int, timeout: float = 20.0) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
