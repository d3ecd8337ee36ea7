"""Run import-linter on several copies of the package in one process: `python -m tests.support.lint_cases DIR...`
prints `{DIR: [exit status, output]}` as JSON.

The same linter as the `lint-imports` command (its `lint_imports` entry point, without a cache), with each copy
first on the path in turn; one interpreter for every case instead of one each (the copies are read, never imported).
"""

import contextlib
import importlib
import io
import json
import os
import sys


def main(dirs: list[str]) -> dict[str, list]:
    from importlinter.cli import lint_imports

    results = {}
    for folder in dirs:
        os.chdir(folder)
        sys.path.insert(0, folder)
        importlib.invalidate_caches()
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            status = lint_imports(no_cache=True)
        sys.path.remove(folder)
        results[folder] = [status, output.getvalue()]
    return results


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
