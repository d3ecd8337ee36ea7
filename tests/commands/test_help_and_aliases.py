"""What `--help` shows: every option of every command says what it does; kubectl's spellings work too."""

import argparse

from exporter.cli import build_parser
from exporter.commands import options


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"(global)": parser, **sub.choices}


def test_every_option_of_every_command_has_help_text():
    missing = [f"{name} {action.option_strings[0]}" for name, parser in commands().items()
               for action in parser._actions
               if action.option_strings and action.help in (None, "") and action.dest != "help"]
    assert missing == []


def test_kubectls_insecure_skip_tls_verify_is_skip_verify():
    parser = build_parser()
    ours = parser.parse_args(["check", "--skip-verify", "reg.example:5000", "nginx"])
    kubectls = parser.parse_args(["check", "--insecure-skip-tls-verify", "reg.example:5000", "nginx"])
    assert ours.skip_verify == kubectls.skip_verify == ["reg.example:5000"]
    settings = [options.settings(args, ("skip_verify",)).skip_verify for args in (ours, kubectls)]
    assert settings[0] == settings[1] == ["reg.example:5000"]
    assert "--insecure-skip-tls-verify" in commands()["serve"].format_help()
