#!/usr/bin/env python3
"""Print the README's metric table from exporter.views.families (the one place families are declared).

`tests/test_metrics_doc.py` fails when the README and this output disagree; paste the output to fix it.
"""

from exporter.views.families import FAMILIES, SELF_FAMILIES


def table() -> str:
    """The exporter's families, then its own process and runtime ones (prometheus_client's collectors)."""
    lines = ["| family | type | labels | meaning | example query |", "|---|---|---|---|---|"]
    for f in (*FAMILIES, *SELF_FAMILIES):
        labels = ", ".join(f.labels) or "—"
        query = f.example.replace("|", "\\|")
        lines.append(f"| `{f.name}` | {f.type} | {labels} | {f.help} | `{query}` |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
