"""A Python user's install: `pip install .` into a fresh environment, then `cds check` and
`cds serve` from another directory, with the knowledge shipped inside the package."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

from tests.conftest import ROOT
from tests.servers import free_port, wait_for


def test_a_fresh_install_serves_discovery(tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    # The dependencies come from this checkout's environment (a .pth file, so nothing is
    # downloaded twice); the package itself is built and installed as a user would.
    site = next((env_dir / "lib").glob("python3*/site-packages"))
    deps = next((Path(sys.prefix) / "lib").glob("python3*/site-packages"))
    (site / "deps.pth").write_text(str(deps) + "\n")
    install = subprocess.run(  # noqa: S603
        [str(py), "-m", "pip", "install", "--quiet", "--no-deps", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDS_", "PYTHONPATH"))}
    env["CDS_FEEDBACK_DB"] = str(tmp_path / "f.sqlite3")
    cds = env_dir / "bin" / "cds"
    check = subprocess.run(  # noqa: S603
        [str(cds), "check", "-v"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "cross-checked, OK" in check.stdout
    assert str(ROOT / "cards") not in check.stdout  # the installed knowledge, not the checkout's
    port = free_port()
    server = subprocess.Popen(  # noqa: S603
        [str(cds), "serve", "--port", str(port)],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        r = wait_for(f"http://127.0.0.1:{port}/cds-services", server, "the installed service")
        assert r.status_code == 200
        assert len(r.json()["services"]) == 3
    finally:
        server.terminate()
        server.wait(timeout=10)


def _checkout_without_shared(tmp_path: Path) -> Path:
    repo = tmp_path / "checkout"
    repo.mkdir()
    (repo / "tests").mkdir()
    for name in ("__init__.py", "conftest.py", "servers.py"):
        (repo / "tests" / name).write_text((ROOT / "tests" / name).read_text())
    (repo / "tests" / "test_one.py").write_text(
        "from tests.conftest import SHARED, needs_shared\n\n\n"
        "def test_one() -> None:\n    pass\n\n\n"
        "@needs_shared(SHARED / 'clinical' / 'terminology.md')\n"
        "def test_needs_the_sheet() -> None:\n    pass\n"
    )
    for name in ("cds", "cards", "fixtures"):
        (repo / name).symlink_to(ROOT / name)
    (repo / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    return repo


def _pytest(repo: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**clean, **env},
    )


def test_without_shared_a_clone_passes_and_names_each_skip(tmp_path: Path) -> None:
    """Issue 27: a clone with nothing beside it passes; what needs ../shared is skipped, one
    line each naming the missing piece (not silently: issue 13)."""
    run = _pytest(_checkout_without_shared(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 1 skipped" in run.stdout
    assert "needs ../shared/clinical/terminology.md" in run.stdout


def test_without_shared_ci_stops_with_one_clear_error(tmp_path: Path) -> None:
    """Under CI a missing ../shared is an error: CI never runs a quietly smaller suite."""
    run = _pytest(_checkout_without_shared(tmp_path), CI="true")
    assert run.returncode != 0
    assert "CI needs the shared reference material" in run.stdout + run.stderr
