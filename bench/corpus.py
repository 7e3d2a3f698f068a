"""A generated corpus of mixed document types and sizes, the same every run (seeded).

Types: PDF (written here, one text layer per page), DOCX, PPTX, XLSX, CSV, HTML, Markdown, plain
text and e-mail. A "page" is about 2,000 characters of prose (a slide, about 500; a sheet page, 40
rows). Sizes are skewed the way real collections are: most documents are a few pages, a few are
long, and the longest has exactly `max_pages` pages.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

PAGE_CHARS = 2000
SLIDE_CHARS = 500
ROWS_PER_PAGE = 40


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_WORDS = _words("""
account action address advice agreement air amount animal answer apple area argument army arrival art
article attempt attention audience author authority autumn balance band bank base basket battle beach
bed bell belt bench bird birth blade board boat body bone book border bottle boundary box brain branch
bread breath brick bridge brother budget building burden business button cabin cable camera camp canal
candle capital captain carbon card career cargo carpet castle cattle ceiling cell centre century chain
chair chamber channel chapter charge chart chemical chest child chimney choice church circle citizen
city claim class clerk climate clock cloth cloud coach coast coffee collar college colony colour column
comfort committee company comparison competition concert condition conference contract copper corner
cotton council country county courage court cousin cover crane credit crew crop crowd crown culture
current curtain customer cycle damage dance danger daughter debt decision degree delivery demand
department deposit desert design desk detail device diamond diary dinner direction director discovery
disease distance district doctor document dollar door drawer dream dress driver drum duty eagle earth
edge education effect effort election electricity element energy engine engineer entrance envelope
equipment estate evening event evidence example exchange exercise expert factory family farm father
feather fence festival field figure film finger fire fish flag flight floor flower foot forest fortune
frame freedom friend fruit fuel furniture garden gate glass glove gold government grain grass group
guard guest guide hammer harbour harvest hat health heart heat hill history holiday honey horse
hospital hotel hour house hunger husband idea income industry insect instrument insurance interest
invention iron island jewel journey judge justice kettle key king kitchen knife knowledge labour ladder
lake lamp land language law lawyer leader leather lesson letter level library licence light limit
line lion liquid list lock machine magazine manager map market meal measure meeting member memory
metal method middle milk mind minister minute mirror money month morning mother mountain museum music
nation nature needle network newspaper night noise north note number nurse ocean office oil opinion
orange order organ owner package page pain paint paper parcel parent park partner passenger patient
pattern payment pencil pepper period person picture piece pilot pipe planet plant plate platform
pocket poem police policy port post potato powder power price prince prison prize problem process
produce profit property protest province public pump purpose quality quarter queen question rail rain
range rate reason receipt record region report request research reward rice river road rock roof room
root rope rule safety sail salt sample sand scale school science screen season seat secret section
seed servant service shade shape sheep shelf ship shirt shoe shop signal silver sister size skill sky
society soldier solution song sound source space speech spring square stage station steam steel stem
stick stone store storm story street structure student subject success sugar summer supply surface
system table tank teacher team temperature tent theory thread ticket timber tool tower town trade
traffic train transport tree trouble truck tunnel union unit valley value vessel village visitor
voice wage wagon wall war watch water wave wealth weather week weight wheel window winter wire woman
wood wool worker world writer yard year youth zone
""")
_VERBS = _words("""
accepts builds carries checks collects covers delivers describes drives examines explains finds follows
gathers guards holds improves joins keeps leads measures moves opens orders owns places prepares
protects reaches records repairs reports returns saves sends serves shows signs supports teaches tests
tracks turns visits watches writes
""")
_ADJECTIVES = _words("""
ancient annual bright broad careful central chief civil clean clear common complete daily dark deep
direct early eastern electric empty equal exact fair famous final formal free fresh full general
golden great green heavy high honest huge important inner large late local long loud low main major
modern narrow national natural new northern old open ordinary original outer plain private proper
public quiet rapid rare recent regular rich rough round royal rural safe sharp short silent simple
small smooth soft solid southern special square steady strong sudden sweet tall thick thin tight
total tropical upper urban usual various vast warm weekly western whole wide wild young
""")

# (type, share of the documents); the sizes below decide how long each is.
_TYPES = [
    ("pdf", 0.30),
    ("docx", 0.15),
    ("html", 0.12),
    ("md", 0.10),
    ("txt", 0.10),
    ("pptx", 0.08),
    ("eml", 0.07),
    ("csv", 0.04),
    ("xlsx", 0.04),
]


@dataclass(frozen=True, slots=True)
class CorpusFile:
    path: Path
    file_type: str
    pages: int

    @property
    def size(self) -> int:
        return self.path.stat().st_size


class Prose:
    """Deterministic English-like sentences (real words, so the tokenizer sees realistic text)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def sentence(self) -> str:
        pick = self.random.choice
        words = [pick(_ADJECTIVES), pick(_WORDS), pick(_VERBS), "the", pick(_ADJECTIVES), pick(_WORDS)]
        if self.random.random() < 0.6:
            words += ["of", "the", pick(_WORDS), "near", "the", pick(_WORDS)]
        if self.random.random() < 0.4:
            words += ["for", "every", pick(_WORDS)]
        text = " ".join(words)
        return text[0].upper() + text[1:] + "."

    def text(self, chars: int) -> str:
        parts: list[str] = []
        length = 0
        while length < chars:
            sentence = self.sentence()
            parts.append(sentence)
            length += len(sentence) + 1
        return " ".join(parts)

    def paragraphs(self, chars: int, size: int = 600) -> list[str]:
        return [self.text(min(size, chars - done)) for done in range(0, chars, size)]

    def title(self) -> str:
        return f"{self.random.choice(_ADJECTIVES).title()} {self.random.choice(_WORDS).title()} Report"


def page_counts(documents: int, max_pages: int, seed: int) -> list[int]:
    """Skewed sizes: 78 % of 1-3 pages, 17 % of 4-12, 4 % of 13-50, 1 % of 51-max; one of max."""
    rng = random.Random(seed)

    def between(low: int, high: int) -> int:
        return rng.randint(min(low, max_pages), min(high, max_pages))

    counts: list[int] = []
    for index in range(documents):
        roll = rng.random()
        if index == 0:
            pages = max_pages
        elif roll < 0.78:
            pages = between(1, 3)
        elif roll < 0.95:
            pages = between(4, 12)
        elif roll < 0.99:
            pages = between(13, 50)
        else:
            pages = between(51, max_pages)
        counts.append(pages)
    return counts


def generate(
    folder: Path, *, documents: int, max_pages: int, seed: int = 7, types: list[str] | None = None
) -> list[CorpusFile]:
    """Write the corpus into `folder` (reused when already there) and describe its files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    kinds = [name for name, _ in _TYPES if types is None or name in types]
    weights = [share for name, share in _TYPES if name in kinds]
    files: list[CorpusFile] = []
    for index, pages in enumerate(page_counts(documents, max_pages, seed)):
        # Long documents are PDFs or Word files, as in real collections.
        kind = "pdf" if index == 0 and "pdf" in kinds else rng.choices(kinds, weights)[0]
        if pages > 12 and kind not in ("pdf", "docx") and types is None:
            kind = rng.choice(["pdf", "docx"])
        path = folder / f"doc-{index:04d}-{pages}p.{kind}"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(render(kind, pages, Prose(seed * 100_003 + index)))
            tmp.replace(path)
        files.append(CorpusFile(path=path, file_type=kind, pages=pages))
    return files


def render(kind: str, pages: int, prose: Prose) -> bytes:
    renderers = {
        "pdf": _pdf,
        "docx": _docx,
        "pptx": _pptx,
        "xlsx": _xlsx,
        "csv": _csv,
        "html": _html,
        "md": _markdown,
        "txt": _txt,
        "eml": _eml,
    }
    return renderers[kind](pages, prose)


def _pdf(pages: int, prose: Prose) -> bytes:
    return simple_pdf([_wrap(prose.text(PAGE_CHARS), 90) for _ in range(pages)])


def simple_pdf(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF: one page per list of lines, Helvetica text layer, ASCII text."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{i} 0 R" for i in page_ids).encode()
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(len(pages)).encode() + b" >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for page_id, lines in zip(page_ids, pages, strict=True):
        content = ["BT /F1 10 Tf 12 TL 50 790 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            content.append(f"({escaped}) '")
        content.append("ET")
        stream = "\n".join(content).encode("latin-1", errors="replace")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {page_id + 1} 0 R >>".encode()
        )
        objects.append(
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream"
        )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _saved(document: Any) -> bytes:
    """What a python-docx, python-pptx or openpyxl document's `save` writes."""
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _docx(pages: int, prose: Prose) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading(prose.title(), level=1)
    for page in range(pages):
        if page % 3 == 0:
            document.add_heading(f"Section {page // 3 + 1}: {prose.title()}", level=2)
        for paragraph in prose.paragraphs(PAGE_CHARS):
            document.add_paragraph(paragraph)
    return _saved(document)


def _pptx(pages: int, prose: Prose) -> bytes:
    import pptx

    deck = pptx.Presentation()
    layout = deck.slide_layouts[1]
    for _ in range(pages):
        slide = deck.slides.add_slide(layout)
        slide.shapes.title.text = prose.title()
        body = slide.placeholders[1].text_frame
        body.text = prose.sentence()
        for _ in range(SLIDE_CHARS // 80):
            body.add_paragraph().text = prose.sentence()
    return _saved(deck)


def _rows(pages: int, prose: Prose) -> list[list[str]]:
    rng = prose.random
    return [
        [str(i + 1), prose.title(), prose.sentence(), f"{rng.uniform(1, 10_000):.2f}"]
        for i in range(pages * ROWS_PER_PAGE)
    ]


def _xlsx(pages: int, prose: Prose) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["id", "name", "description", "amount"])
    for row in _rows(pages, prose):
        sheet.append(row)
    return _saved(book)


def _csv(pages: int, prose: Prose) -> bytes:
    import csv

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "name", "description", "amount"])
    writer.writerows(_rows(pages, prose))
    return out.getvalue().encode()


def _html(pages: int, prose: Prose) -> bytes:
    body = [f"<h1>{prose.title()}</h1>"]
    for page in range(pages):
        body.append(f"<h2>Part {page + 1}</h2>")
        body += [f"<p>{paragraph}</p>" for paragraph in prose.paragraphs(PAGE_CHARS)]
    return (
        f"<!DOCTYPE html><html><head><title>Report</title></head><body>{''.join(body)}</body></html>".encode()
    )


def _markdown(pages: int, prose: Prose) -> bytes:
    parts = [f"# {prose.title()}"]
    for page in range(pages):
        parts.append(f"## Part {page + 1}")
        parts += prose.paragraphs(PAGE_CHARS)
    return "\n\n".join(parts).encode()


def _txt(pages: int, prose: Prose) -> bytes:
    return "\n\n".join(p for _ in range(pages) for p in prose.paragraphs(PAGE_CHARS)).encode()


def _eml(pages: int, prose: Prose) -> bytes:
    message = EmailMessage()
    message["From"] = "clerk@example.com"
    message["To"] = "office@example.com"
    message["Subject"] = prose.title()
    message.set_content("\n\n".join(p for _ in range(pages) for p in prose.paragraphs(PAGE_CHARS)))
    return bytes(message)


def corpus_size(smoke: bool) -> tuple[int, int]:
    """(documents, max_pages) for the end-to-end corpus: the issue's 200 documents of 1-500 pages."""
    return (6, 3) if smoke else (200, 500)


def pipeline_chunks(files: list[CorpusFile]) -> list[str]:
    """The texts of the chunks the pipeline makes of `files` (its own extract and chunk stages)."""
    from shared.pipeline.chunking import ChunkingSettings, chunk
    from shared.pipeline.extract import extract

    texts: list[str] = []
    for file in files:
        texts += [c.text for c in chunk(extract(file.path, file.file_type), ChunkingSettings())]
    return texts
