"""The README's Python snippets run as written, in order, on its tiny data."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_snippets_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["probabilities"].shape == (8, 10)
    assert namespace["report"].passed in (True, False)


def test_layout_table_matches_the_tree():
    """Every path the Layout table names exists, and it names every part."""
    root = README.parent
    text = README.read_text()
    section = text[text.index("## Layout") : text.index("## Results")]
    paths = re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)
    assert paths
    for path in paths:
        matches = list(root.glob(path.rstrip("/")))
        assert matches, f"the README's layout names {path}, which is not in the tree"
    named = {p.rstrip("/") for p in paths}
    for entry in (root / "kerasreg").iterdir():
        if entry.name in ("__init__.py", "__pycache__"):
            continue
        rel = f"kerasreg/{entry.name}"
        covered = rel in named or (entry.name.startswith("_") and "kerasreg/_*.py" in named)
        assert covered, f"{rel} is missing from the README's layout table"
