"""What a non-editable install ships: every subpackage of link/, semantic/ and sim/."""

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = {"link": "lgvsc.link", "semantic": "lgvsc.semantic", "sim": "lgvsc.sim"}


def test_setup_cfg_lists_every_subpackage():
    """`pip install .` (not -e) installs only the packages setup.cfg names: a folder
    with an __init__.py left out would be missing on a user's machine."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    found = set()
    for folder, name in TOP.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *rel)))
    assert found - listed == set(), "add these to setup.cfg [options] packages"
    assert listed - found == set()
