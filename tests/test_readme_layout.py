"""The README's Layout section names every module of xlray/ and nothing else."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def listed_modules() -> set[str]:
    """Modules the Layout block names: ``  name.py  ...`` at the top level; under ``  package/  ...`` lines of
    ``    a.py  b.py`` (a line that starts with ``sub/`` lists ``package/sub/`` modules)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    found, package = set(), ""
    for line in block.splitlines()[2:]:  # after the opening line and "xlray/"
        words = line.split()
        if line.startswith("    "):
            sub = words[0] if words[0].endswith("/") else ""
            found |= {f"{package}{sub}{w}" for w in words if re.fullmatch(r"\w+\.py", w)}
        elif words:
            package = words[0] if words[0].endswith("/") else ""
            if not package:
                found.add(words[0])
    return found


def test_the_readme_layout_lists_every_module():
    on_disk = {
        str(p.relative_to(REPO / "xlray"))
        for p in (REPO / "xlray").rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    }
    assert listed_modules() == on_disk
