"""The hook specs are the public plugin API: changes must be recorded.

``tests/hookspec_snapshot.json`` holds, for every hook, the history of its
public shape (arguments, firstresult, historic) with the version of each
change. This test fails when the specs differ from the latest recorded
shape, or when a recorded change is not described in CHANGELOG.md under its
version. To change a hook: append a new entry ``{"version": "X.Y.Z", ...}``
to its history (``python -m honeychat.core.hookdoc --snapshot`` prints the
current shapes), and mention the hook under ``## [X.Y.Z]`` in CHANGELOG.md.
A removed hook gets a last entry ``{"version": "X.Y.Z", "removed": true}``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from honeychat.core.hookdoc import snapshot

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).with_name("hookspec_snapshot.json")
CHANGELOG = ROOT / "CHANGELOG.md"
HOW_TO = (
    "Update tests/hookspec_snapshot.json (append a history entry for the new version; "
    "`python -m honeychat.core.hookdoc --snapshot` prints the current shapes) AND describe "
    "the change under that version in CHANGELOG.md, naming the hook."
)


def changelog_sections(text: str) -> dict[str, str]:
    """The body of each ``## [version]`` section of a Keep a Changelog file."""
    parts = re.split(r"^## \[([^\]]+)\].*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def api_problems(
    current: dict[str, dict[str, Any]], history: dict[str, list[dict[str, Any]]], changelog: str
) -> list[str]:
    """Every way the current specs disagree with the recorded history and the changelog."""
    problems = []
    sections = changelog_sections(changelog)
    for name, shape in current.items():
        records = history.get(name)
        if not records:
            problems.append(f"new hook {name} is not recorded")
            continue
        latest = {k: v for k, v in records[-1].items() if k != "version"}
        if latest != shape:
            problems.append(f"hook {name} changed: recorded {latest}, now {shape}")
    for name, records in history.items():
        if name not in current and not records[-1].get("removed"):
            problems.append(f"hook {name} was removed (or renamed) without a 'removed' entry")
        for record in records:
            version = record.get("version", "?")
            body = sections.get(version)
            if body is None:
                problems.append(f"CHANGELOG.md has no section ## [{version}] (for {name})")
            elif not re.search(rf"\b{re.escape(name)}\b", body):
                problems.append(f"CHANGELOG.md ## [{version}] does not mention {name}")
    return problems


def test_hook_specs_match_the_recorded_api() -> None:
    history = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    problems = api_problems(snapshot(), history, CHANGELOG.read_text(encoding="utf-8"))
    assert not problems, "\n".join([*problems, HOW_TO])


def test_the_check_catches_unrecorded_changes() -> None:
    history = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    changelog = CHANGELOG.read_text(encoding="utf-8")
    current = snapshot()
    renamed_arg = {**current, "honeychat_ingest": {**current["honeychat_ingest"], "args": ["t"]}}
    assert api_problems(renamed_arg, history, changelog) == [
        "hook honeychat_ingest changed: recorded "
        f"{current['honeychat_ingest']}, now {renamed_arg['honeychat_ingest']}"
    ]
    renamed_hook = dict(current)
    renamed_hook["honeychat_ingest_v2"] = renamed_hook.pop("honeychat_ingest")
    problems = api_problems(renamed_hook, history, changelog)
    assert "new hook honeychat_ingest_v2 is not recorded" in problems
    assert any("honeychat_ingest was removed" in p for p in problems)
    # Recorded in the snapshot but not in the changelog: still a failure.
    history["honeychat_ingest"].append({"version": "0.2.0", **renamed_arg["honeychat_ingest"]})
    assert api_problems(renamed_arg, history, changelog) == [
        "CHANGELOG.md has no section ## [0.2.0] (for honeychat_ingest)"
    ]
    changelog += "\n## [0.2.0] - 2027-01-01\n\n### Changed\n\n- Something else.\n"
    assert api_problems(renamed_arg, history, changelog) == [
        "CHANGELOG.md ## [0.2.0] does not mention honeychat_ingest"
    ]
    changelog += "- `honeychat_ingest(t)`: renamed the argument.\n"
    assert api_problems(renamed_arg, history, changelog) == []
