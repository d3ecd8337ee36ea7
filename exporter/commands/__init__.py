"""Subcommands. Each command's module has `register(subparsers)`, which adds its parser and sets `func`.

`options` holds what every command shares and reads it into `config`, the one settings model; `errors` the two
failures a command reports as one line.
"""
