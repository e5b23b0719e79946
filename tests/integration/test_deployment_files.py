"""Docker files, the Procfile and the README must not drift from the code they describe."""

import json
import re

import yaml

from partner_portal import supervise
from tests.integration.servers import REPO_DIR, procfile_commands


def test_compose_runs_every_procfile_process_with_the_procfiles_command_line():
    services = yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())["services"]

    for name, command in procfile_commands().items():
        assert services[name]["command"] == command, name


def test_compose_restarts_every_procfile_process_that_exits():
    services = yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())["services"]

    for name in procfile_commands():
        assert services[name]["restart"] in ("always", "unless-stopped", "on-failure"), name


def test_make_run_runs_every_procfile_process_under_the_supervisor():
    dev = procfile_commands(REPO_DIR / "Procfile.dev")
    makefile = (REPO_DIR / "Makefile").read_text()

    assert dev == {name: f"python partner_portal/supervise.py {name}" for name in procfile_commands()}
    for name, command in procfile_commands().items():
        assert supervise.procfile_command(name) == command  # the Procfile's own line, word for word
    assert re.search(r"honcho start --procfile Procfile\.dev$", makefile, re.MULTILINE)


def test_compose_runs_exactly_one_beat():
    services = yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())["services"]
    commands = [service.get("command") for service in services.values()]

    beat = procfile_commands()["beat"]
    assert commands.count(beat) == 1
    assert "replicas" not in json.dumps(services["beat"])


def test_the_images_default_command_is_the_procfiles_web_process():
    dockerfile = (REPO_DIR / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)

    assert cmd is not None
    assert " ".join(json.loads(cmd.group(1))) == procfile_commands()["web"]
    assert re.search(r"^USER (?!root)\w+$", dockerfile, re.MULTILINE), "the image must not run as root"


def test_the_readme_documents_every_environment_variable_the_settings_read():
    settings_source = (REPO_DIR / "partner_portal" / "settings.py").read_text()
    readme = (REPO_DIR / "README.md").read_text()
    names = set(
        re.findall(
            r"""(?:env\.\w+|Env\(\)\.\w+|_required_in_production)\(\s*["']([A-Z][A-Z0-9_]+)["']""", settings_source
        )
    )

    assert {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} <= names
    undocumented = sorted(name for name in names if f"`{name}`" not in readme)
    assert not undocumented, f"add these to README.md's configuration table: {undocumented}"


def test_the_readme_documents_every_management_command():
    commands = {path.stem for path in REPO_DIR.glob("*/management/commands/*.py") if not path.stem.startswith("_")}
    readme = (REPO_DIR / "README.md").read_text()

    assert "demo_setup" in commands
    undocumented = sorted(name for name in commands if f"`{name}" not in readme)
    assert not undocumented, f"add these to README.md's management commands: {undocumented}"
