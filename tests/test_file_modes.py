"""The development defaults keep their files to the user who runs the portal: the generated
secrets and the SQLite database are 0600, a var/ directory made for them 0700."""

import stat
import subprocess
import sys
from pathlib import Path

from tests.production import embedded_env

REPO = Path(__file__).resolve().parent.parent

# Settings as `make run` loads them, then the database opened and written, in a process with
# the usual umask. SQLite's WAL files exist while a connection is open, so their modes are
# printed before it closes.
START = """
import os, stat
os.umask(0o022)
import django
django.setup()
from django.conf import settings
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE IF NOT EXISTS probe (x integer)")
    cursor.execute("INSERT INTO probe VALUES (1)")
for suffix in ("-wal", "-shm"):
    print(oct(stat.S_IMODE(os.stat(str(settings.DATABASES["default"]["NAME"]) + suffix).st_mode)))
"""


def start_portal(var_dir: Path) -> list[str]:
    """The modes of SQLite's -wal and -shm files while the portal had the database open."""
    done = subprocess.run(
        [sys.executable, "-c", START], cwd=REPO, env=embedded_env(var_dir), check=True, timeout=120, capture_output=True
    )
    return done.stdout.decode().split()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_and_the_database_are_created_readable_by_their_owner_only(tmp_path):
    var_dir = tmp_path / "var"

    wal_modes = start_portal(var_dir)

    assert mode(var_dir) == 0o700
    for name in ("dev-secret-key", "dev-encryption-key", "portal.sqlite3"):
        assert mode(var_dir / name) == 0o600, name
    assert wal_modes == ["0o600", "0o600"]


def test_files_an_older_version_left_readable_by_others_are_tightened(tmp_path):
    start_portal(tmp_path)
    secret = (tmp_path / "dev-secret-key").read_text()
    for name in ("dev-secret-key", "dev-encryption-key", "portal.sqlite3"):
        (tmp_path / name).chmod(0o644)

    start_portal(tmp_path)

    for name in ("dev-secret-key", "dev-encryption-key", "portal.sqlite3"):
        assert mode(tmp_path / name) == 0o600, name
    assert (tmp_path / "dev-secret-key").read_text() == secret


def test_a_var_directory_that_exists_keeps_its_mode(tmp_path):
    tmp_path.chmod(0o750)
    start_portal(tmp_path)
    assert mode(tmp_path) == 0o750
