"""docs/options.md is the registry's current option reference (regenerate: python -m ganapps.docs_options)."""

from pathlib import Path

from ganapps import tasks
from ganapps.docs_options import render

DOC = Path(__file__).resolve().parents[1] / "docs" / "options.md"


def test_options_reference_is_current_and_covers_every_task():
    text = render()
    assert DOC.read_text() == text, "docs/options.md is stale: run `python -m ganapps.docs_options`"
    for spec in tasks.specs():
        assert f"\n## {spec.name}\n" in text and "`--steps`" in text
