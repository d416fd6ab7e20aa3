"""The README's "Using it with your gpuoutlet account" (issue 15.7): what it tells a new user to
run works, and every setting it names exists."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path

import pytest
from traitlets.config import Configurable

from gpuoutlet_jupyter.api.settings import Settings
from gpuoutlet_jupyter.kernel.provisioner import GpuOutletSSHProvisioner
from gpuoutlet_jupyter.server.app import GpuOutletApp

ROOT = Path(__file__).resolve().parent.parent
TITLE = "Using it with your gpuoutlet account"


def _section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    _, found, rest = readme.partition(f"\n## {TITLE}\n")
    assert found, f"the README has no '## {TITLE}' section"
    return rest.split("\n## ", 1)[0]


def test_the_quickstart_points_at_the_section() -> None:
    _section()
    notebook = json.loads((ROOT / "notebooks" / "quickstart.ipynb").read_text(encoding="utf-8"))
    text = " ".join("".join(cell["source"]) for cell in notebook["cells"])
    assert f"*{TITLE}*" in " ".join(text.split())


def test_it_covers_what_a_first_user_needs() -> None:
    section = " ".join(_section().split())
    for needed in (
        "pip install",  # into your own JupyterLab
        "jupyter labextension list",
        "%gpu_login",  # signing in from Jupyter
        "Cookies",  # or where a sid comes from
        "%gpu_keys add",  # the key on the account before renting
        "Permission denied (publickey)",
        "python3",  # what the pod needs
        "install_ipykernel",
        "/root/work",  # where files live
        "wipes its disk",
    ):
        assert needed in section, needed


def test_the_credentials_commands_write_a_file_only_you_can_read(tmp_path: Path) -> None:
    """The commands run as given, the sid typed on stdin: the file is 0600 (the client refuses
    any other), the sid is read from it, and it never appears in what the commands print."""
    block = re.search(r"```bash\n(.*?)```", _section(), re.S)
    assert block, "no bash block in the section"
    commands = "\n".join(line.strip() for line in block.group(1).splitlines())
    home = tmp_path / "home"
    home.mkdir()
    sid = "s" * 43 + "Q"
    done = subprocess.run(
        ["bash", "-e", "-c", commands],
        input=sid + "\n",
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sid not in done.stdout + done.stderr
    credentials = home / ".config" / "gpuoutlet" / "credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    settings = Settings.from_env({"HOME": str(home)})
    assert settings.sid is not None and settings.sid.get_secret_value() == sid
    assert settings.sid_source == str(credentials)


CLASSES: dict[str, type[Configurable]] = {
    "GpuOutletApp": GpuOutletApp,
    "GpuOutletSSHProvisioner": GpuOutletSSHProvisioner,
}


@pytest.mark.parametrize(
    "name", sorted(set(re.findall(r"c\.(\w+)\.\s*(\w+)", _section())) or {("missing", "")})
)
def test_every_setting_it_names_is_a_config_trait(name: tuple[str, str]) -> None:
    owner, trait = name
    assert owner in CLASSES, f"c.{owner}.{trait}: not a class the README's settings belong to"
    traits = CLASSES[owner].class_traits(config=True)
    assert trait in traits, f"c.{owner}.{trait} is not a setting"
