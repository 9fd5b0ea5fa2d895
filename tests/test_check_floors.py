"""scripts/check_floors.py: `make test` fails when a package is older than its floor.

Issue 13, finding 11: floors sit past known CVEs, and a venv or lock that lags behind
them must not pass quietly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_floors.py"


def run(pyproject: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--pyproject", str(pyproject), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_installed_packages_meet_the_projects_floors() -> None:
    result = run(ROOT / "pyproject.toml", "--extra", "test")
    assert result.returncode == 0, result.stderr


def test_a_package_older_than_its_floor_fails_naming_it(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "demo"\ndependencies = ["werkzeug>=999", "attrs>=1"]\n'
        '[project.optional-dependencies]\ntest = ["pytest>=999"]\n'
    )
    result = run(pyproject)
    assert result.returncode == 1
    assert "werkzeug:" in result.stderr
    assert "wanted >=999" in result.stderr
    assert "attrs" not in result.stderr
    assert "pytest" not in result.stderr  # the extra is checked only when asked
    assert "pytest:" in run(pyproject, "--extra", "test").stderr


def test_a_missing_package_and_markers_that_do_not_apply(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "demo"\ndependencies = [\n'
        '  "no-such-package-hookline>=1",\n'
        "  \"werkzeug>=999; python_version < '3.0'\",\n]\n"
    )
    result = run(pyproject)
    assert result.returncode == 1
    assert "no-such-package-hookline: not installed" in result.stderr
    assert "werkzeug" not in result.stderr


def test_the_locks_pin_every_floor_with_hashes() -> None:
    """The locks make/CI install from are in step with pyproject.toml's floors."""
    for name in ("requirements.lock", "requirements-test.lock"):
        text = (ROOT / name).read_text()
        assert "--hash=sha256:" in text
        for pin in ("werkzeug==", "h11==", "h2==", "pyjwt==", "jinja2==", "cryptography=="):
            assert pin in text, f"{name} lacks {pin}"
    test_lock = (ROOT / "requirements-test.lock").read_text()
    for pin in ("playwright==", "schemathesis==", "google-re2==", "pytest=="):
        assert pin in test_lock
