"""Regenerate docs/settings.md tables and .env.example from stemedb.settings.

Run after adding a setting: `.venv/bin/python scripts/gen_settings_docs.py`.
The header prose of docs/settings.md (everything before the first `## [` heading) is kept.
"""

from __future__ import annotations

from pathlib import Path

from stemedb.settings import all_settings

ROOT = Path(__file__).resolve().parents[1]
CLIENT_ONLY = [("STEMEDB_URL", "http://127.0.0.1:18180",
                "Base URL the `stemedb` client and admin commands talk to (client side only).")]


def main() -> None:
    doc = ROOT / "docs" / "settings.md"
    head = doc.read_text().split("\n## `[", 1)[0].rstrip() + "\n"
    out = [head]
    section = None
    for s in all_settings():
        if s.section != section:
            section = s.section
            out += ["", f"## `[{section}]`", "", "| key | env | type | default | meaning |",
                    "| --- | --- | --- | --- | --- |"]
        default = repr(s.default) if isinstance(s.default, str) else str(s.default)
        out.append(f"| `{s.key}` | `{s.env}` | {s.type} | `{default}` | {s.doc} |")
    out += ["", "## Environment only", "", "| env | default | meaning |", "| --- | --- | --- |",
            "| `STEMEDB_CONFIG` | unset | Path of the TOML config file. |"]
    out += [f"| `{env}` | `{d}` | {doc_} |" for env, d, doc_ in CLIENT_ONLY]
    doc.write_text("\n".join(out) + "\n")

    env = ["# StemeDB environment variables. Every one is optional; unset means the config",
           "# file's value, else the built-in default (docs/settings.md).", "",
           "# Path of the TOML config file.", "# STEMEDB_CONFIG=/etc/stemedb/config.toml", ""]
    for s in all_settings():
        env += [f"# [{s.section}] {s.key}: {s.doc}", f"# {s.env}={s.default}", ""]
    for name, default, doc_ in CLIENT_ONLY:
        env += [f"# {doc_}", f"# {name}={default}", ""]
    (ROOT / ".env.example").write_text("\n".join(env))


if __name__ == "__main__":
    main()
