"""Every relative link in the README and docs, and every pointer from code to a docs section, resolves."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
# docs/page.md, "Section" (either quote), in code comments, docstrings and messages
POINTER = re.compile(r"(docs/[\w.-]+\.md|README\.md|ARCHITECTURE\.md)(?:,\s*[\"']([^\"']+)[\"'])?")


def headings(page: Path) -> list[str]:
    return [line.lstrip("#").strip().replace("`", "") for line in page.read_text().splitlines() if line.startswith("#")]


def test_the_docs_pages_exist():
    for name in ("results", "methods", "label-free", "scaling", "file-format", "DEVELOPMENT"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), name


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if "://" in target or target.startswith("#") or target.startswith("mailto:"):
                continue
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_every_pointer_from_code_names_a_section_that_exists():
    broken, seen = [], 0
    for source in [*(ROOT / "unlearnable").rglob("*.py"), *(ROOT / "examples").glob("*.py")]:
        text = source.read_text()
        for match in POINTER.finditer(text):
            page, section = ROOT / match.group(1), match.group(2)
            seen += 1
            if not page.is_file():
                broken.append(f"{source.relative_to(ROOT)}: {match.group(0)} (no such page)")
            elif section and not any(h.startswith(section.replace("`", "")) for h in headings(page)):
                broken.append(f"{source.relative_to(ROOT)}: {match.group(0)} (no such section)")
        assert "(README," not in text and "see README)" not in text, f"{source}: point to a docs section instead"
    assert seen >= 10 and not broken, broken


def test_the_readme_stays_short_and_speaks_of_the_product():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    for page in PAGES:
        if page.name != "CHANGELOG.md":  # the history may say when
            assert not re.search(r"\bissue \d+|\bsession\b", page.read_text()), page.name
