"""Every option of every sub-command has a description and states its default once."""
import argparse
import re
import subprocess
import sys

import pytest

from netlearn.cli import build_parser


def options(parser, name="netlearn"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                yield from options(p, f"{name} {sub}")
        elif action.option_strings and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield name, parser, action


ALL = list(options(build_parser()))


def test_the_walk_reaches_every_sub_command():
    commands = {name for name, _, _ in ALL}
    assert {"netlearn train", "netlearn evaluate", "netlearn predict", "netlearn grid", "netlearn reproduce",
            "netlearn data download"} <= commands
    assert len(ALL) > 60


@pytest.mark.parametrize("name,parser,action", ALL, ids=[f"{n} {a.option_strings[-1]}" for n, _, a in ALL])
def test_option_has_a_description_and_one_default(name, parser, action):
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    described = re.sub(r"\(default:[^)]*\)", "", text).strip()
    assert described, f"{name} {action.option_strings}: no description"
    if action.required:
        assert "required" in text and "default:" not in text, f"{name} {action.option_strings}: {text!r}"
        return
    assert len(re.findall(r"default:", text, re.IGNORECASE)) == 1, f"{name} {action.option_strings}: {text!r}"
    assert "(default: None)" not in text, f"{name} {action.option_strings}: explain what no value means"


def test_help_output_has_no_doubled_default():
    for command in (["train"], ["grid"], ["data", "download"], ["reproduce"], ["predict"], ["evaluate"]):
        out = subprocess.run([sys.executable, "-m", "netlearn", *command, "--help"], capture_output=True,
                             text=True, check=True).stdout
        flat = " ".join(out.split())
        assert not re.search(r"\(default: [^)]*\)\s*\(default:", flat), command
