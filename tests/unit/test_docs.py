"""The project's documentation holds together: every relative link and `#anchor` in README.md and
docs/*.md leads somewhere, and every `docs/<page>.md#anchor` the code cites exists.

Anchors are GitHub's: one per heading (lower-cased, punctuation dropped, spaces as hyphens, `-1`,
`-2` for repeats) and one per `<a id="...">`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE_FOLDERS = ("api", "worker", "shared", "cli", "infra", "tests", "bench")

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_ANCHOR_TAG = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
_CITATION = re.compile(r"\bdocs/([A-Za-z0-9_.-]+\.md)(?:#([A-Za-z0-9_-]+))?")


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def _prose(text: str) -> str:
    """The text without code blocks and inline code, where brackets are not links."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def _slug(heading: str) -> str:
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8")
    found = set(_ANCHOR_TAG.findall(text))
    seen: Counter[str] = Counter()
    for heading in _HEADING.findall(_FENCE.sub("", text)):
        slug = _slug(heading)
        found.add(slug if seen[slug] == 0 else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return found


def broken_links(page: Path) -> list[str]:
    """Each relative link of `page` whose file or anchor does not exist, as `page: target`."""
    broken = []
    for target in _LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{_shown(page)}: {target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{_shown(page)}: {target} (no such anchor)")
    return broken


def broken_citations(source: Path, docs: Path) -> list[str]:
    """Each `docs/<page>.md[#anchor]` cited in `source` that does not exist, as `file:line: citation`."""
    broken = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        for page_name, anchor in _CITATION.findall(line):
            page = docs / page_name
            if not page.exists() or (anchor and anchor not in anchors(page)):
                cited = f"docs/{page_name}" + (f"#{anchor}" if anchor else "")
                broken.append(f"{_shown(source)}:{number}: {cited}")
    return broken


def test_every_link_in_the_readme_and_docs_resolves() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) > 1, "docs/ has no pages"
    broken = [link for page in pages for link in broken_links(page)]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_docs_page_the_code_cites_exists() -> None:
    sources = [path for folder in CODE_FOLDERS for path in sorted((ROOT / folder).rglob("*.py"))]
    sources.remove(Path(__file__).resolve())  # its own examples of broken citations
    cited = [path for path in sources if _CITATION.search(path.read_text(encoding="utf-8"))]
    assert cited, "no code cites docs/: the citations this test guards are gone"
    broken = [citation for path in cited for citation in broken_citations(path, ROOT / "docs")]
    assert not broken, "code cites docs that do not exist:\n" + "\n".join(broken)


def test_architecture_invariants_are_anchored_in_order() -> None:
    found = anchors(ROOT / "docs" / "architecture.md")
    numbered = sorted(int(name[1:]) for name in found if re.fullmatch(r"i\d+", name))
    assert numbered and numbered == list(range(1, len(numbered) + 1))


def test_a_broken_link_anchor_or_citation_is_reported(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.md").write_text(
        '# A page\n\n<a id="i1"></a>\n## Two words, here\n\n'
        "[ok](#two-words-here) [ok](page.md#i1) [gone](missing.md) [no anchor](#i2)\n"
        "`[in code](nowhere.md)`\n",
        encoding="utf-8",
    )
    assert broken_links(docs / "page.md") == [
        "page.md: missing.md (no such file)",
        "page.md: #i2 (no such anchor)",
    ]
    source = tmp_path / "cites.py"
    source.write_text('"""Cites docs/page.md#i1."""\n# docs/page.md#i9 and docs/gone.md\n', encoding="utf-8")
    assert broken_citations(source, docs) == ["cites.py:2: docs/page.md#i9", "cites.py:2: docs/gone.md"]
