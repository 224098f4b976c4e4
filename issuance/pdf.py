"""The criminal-record certificate ("Phiếu lý lịch tư pháp") and other issued documents rendered as PDF.

The layout follows the official forms of the Ministry of Justice for criminal-record certificates No. 1 and
No. 2 (Circular 06/2013/TT-BTP, forms 06/2013/TT-LLTP and 07/2013/TT-LLTP, issued under the Law on Judicial
Records 2009, articles 42 and 43) and the presentation of administrative documents (Decree 30/2020/NĐ-CP,
appendix I: the national motto "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM / Độc lập - Tự do - Hạnh phúc" top right,
the issuing authority and the document number top left, place and date above the signer's title):

- No. 1 (article 42): the holder's identity, the convictions not yet expunged, or "Không có án tích", and the
  ban on holding office or founding / managing an enterprise or cooperative only when the applicant asked;
- No. 2 (article 43): also the names of the parents and the spouse, and every conviction, expunged ones
  included (marked "Đã được xóa án tích").

A QR code (PNG bytes from the caller: the signed offline payload) sits bottom left, above the line telling how
to check the document. Text is set in DejaVu Serif (``issuance/fonts``: regular, bold and italic, reduced to
Latin, Vietnamese and punctuation; Bitstream Vera licence in ``issuance/fonts/LICENSE``), which covers all 134
precomposed Vietnamese letters; every string is normalised to NFC first, and a character the fonts lack (e.g.
Cyrillic or CJK), or a control character, is refused (``InvalidArgument``) rather than rendered as a blank. The
output is deterministic: the same input gives the same bytes (the creation date is the issue date).

:func:`render_document` lays out any titled list of sections in the same frame (the health book's visit
PDF); :func:`render_certificate` the certificate. Both return the PDF bytes, to be signed by
``issuance.pades``.
"""

from __future__ import annotations

import io
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import SubsetMap, TTFFont
from fpdf.output import OutputProducer
from PIL import Image, UnidentifiedImageError

from core.errors import InvalidArgument

FONTS = Path(__file__).parent / "fonts"
FONT_FILES = {"": "DejaVuSerif-vi.ttf", "B": "DejaVuSerif-Bold-vi.ttf", "I": "DejaVuSerif-Italic-vi.ttf"}
FAMILY = "DejaVuSerif"
NATION = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
NO_CONVICTION = "Không có án tích"
HAS_CONVICTION = "Có án tích"
EXPUNGED = "Đã được xóa án tích"
CONVICTIONS_HEADING = "TÌNH TRẠNG ÁN TÍCH"
BAN_HEADING = "THÔNG TIN VỀ VIỆC CẤM ĐẢM NHIỆM CHỨC VỤ, THÀNH LẬP, QUẢN LÝ DOANH NGHIỆP, HỢP TÁC XÃ"
SIGNER_HEADING = "NGƯỜI KÝ PHIẾU LÝ LỊCH TƯ PHÁP"
LEGAL_BASIS = (
    "Căn cứ Luật Lý lịch tư pháp ngày 17 tháng 6 năm 2009, được sửa đổi, bổ sung bởi Luật số 107/2025/QH15;",
    "Căn cứ Thông tư số 06/2013/TT-BTP ban hành và hướng dẫn việc quản lý, sử dụng biểu mẫu lý lịch tư pháp;",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_QR_BYTES = 256 * 1024
QR_SIZE = 32.0  # mm
MARGIN = 20.0
BODY = 11.0
LINE = 6.0


@dataclass(frozen=True, slots=True)
class Holder:
    """The person the certificate is about (articles 42 and 43: identity; parents and spouse on No. 2)."""

    full_name: str
    sex: str
    date_of_birth: date
    place_of_birth: str
    nationality: str
    ethnicity: str
    residence: str
    id_number: str
    father: str = ""
    mother: str = ""
    spouse: str = ""


@dataclass(frozen=True, slots=True)
class Conviction:
    """One conviction as the certificate states it (judgment, court, offence with its Penal Code article,
    sentence, completion); ``expunged`` ones appear on No. 2 only, marked as such."""

    judgment: str
    court: str
    offence: str
    sentence: str
    completion: str
    expunged: bool = False


@dataclass(frozen=True, slots=True)
class CertificateView:
    """Everything printed on a certificate. ``convictions`` are those to print (the caller applies the No. 1
    rule: expunged ones left out); ``ban`` is None when not asked for, else the text to certify."""

    form: int
    number: str
    authority: str
    holder: Holder
    convictions: tuple[Conviction, ...]
    ban: str | None
    place: str
    issued_on: date
    signer_title: str
    signer_name: str
    verify_url: str


@dataclass(frozen=True, slots=True)
class Section:
    """A heading followed by label/value rows and paragraphs (in that order; ``strong``: paragraphs in bold)."""

    heading: str
    rows: tuple[tuple[str, str], ...] = ()
    paragraphs: tuple[str, ...] = ()
    strong: bool = False


@dataclass(frozen=True, slots=True)
class Signature:
    """The signature block printed bottom right: place, date and the signer's title and name."""

    place: str = ""
    day: date | None = None
    heading: str = ""
    title: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class _Frame:
    title: str
    authority: str = ""
    number: str = ""
    preamble: tuple[str, ...] = ()
    sections: tuple[Section, ...] = ()
    signature: Signature = field(default_factory=Signature)
    verify_url: str = ""


def render_certificate(view: CertificateView, qr_png: bytes) -> bytes:
    """The certificate No. 1 or No. 2 as PDF bytes, with ``qr_png`` bottom left."""
    if not isinstance(view, CertificateView):
        raise InvalidArgument("a certificate view is required")
    if view.form not in (1, 2):
        raise InvalidArgument("the certificate form is 1 or 2")
    holder = view.holder
    if not isinstance(holder, Holder):
        raise InvalidArgument("the certificate needs its holder")
    if not isinstance(view.issued_on, date) or not isinstance(holder.date_of_birth, date):
        raise InvalidArgument("issued_on and date_of_birth must be dates")
    if not isinstance(view.convictions, tuple) or not all(isinstance(c, Conviction) for c in view.convictions):
        raise InvalidArgument("every conviction must be a Conviction")
    _require(number=view.number, authority=view.authority, place=view.place, signer_title=view.signer_title)
    _require(signer_name=view.signer_name, full_name=holder.full_name, id_number=holder.id_number)
    rows = [
        ("1. Họ và tên", holder.full_name),
        ("2. Giới tính", holder.sex),
        ("3. Ngày, tháng, năm sinh", holder.date_of_birth.strftime("%d/%m/%Y")),
        ("4. Nơi sinh", holder.place_of_birth),
        ("5. Quốc tịch", holder.nationality),
        ("6. Dân tộc", holder.ethnicity),
        ("7. Nơi cư trú", holder.residence),
        ("8. Số định danh cá nhân", holder.id_number),
    ]
    if view.form == 2:
        rows += [
            ("9. Họ và tên cha", holder.father or "—"),
            ("10. Họ và tên mẹ", holder.mother or "—"),
            ("11. Họ và tên vợ/chồng", holder.spouse or "—"),
        ]
    sections = [Section("XÁC NHẬN", rows=tuple(rows)), *_convictions(view.convictions)]
    if view.ban is not None:
        sections.append(Section(BAN_HEADING, paragraphs=(view.ban,)))
    frame = _Frame(
        title=f"PHIẾU LÝ LỊCH TƯ PHÁP SỐ {view.form}",
        authority=view.authority,
        number=view.number,
        preamble=LEGAL_BASIS,
        sections=tuple(sections),
        signature=Signature(view.place, view.issued_on, SIGNER_HEADING, view.signer_title, view.signer_name),
        verify_url=view.verify_url,
    )
    return _render(frame, qr_png)


def render_document(
    title: str,
    sections: Sequence[Section],
    qr_png: bytes,
    *,
    verify_url: str,
    authority: str = "",
    number: str = "",
    signature: Signature | None = None,
) -> bytes:
    """Any issued document (e.g. a health-book visit) in the frame of the certificate: motto, authority and
    number, ``title``, the ``sections``, an optional signature block, the QR and the verification line."""
    if not isinstance(sections, Sequence) or not all(isinstance(s, Section) for s in sections):
        raise InvalidArgument("every section must be a Section")
    if signature is not None and not isinstance(signature, Signature):
        raise InvalidArgument("signature must be a Signature")
    frame = _Frame(
        title=title,
        authority=authority,
        number=number,
        sections=tuple(sections),
        signature=signature or Signature(),
        verify_url=verify_url,
    )
    return _render(frame, qr_png)


def _convictions(convictions: tuple[Conviction, ...]) -> list[Section]:
    if not convictions:
        return [Section(CONVICTIONS_HEADING, paragraphs=(NO_CONVICTION,), strong=True)]
    sections = [Section(CONVICTIONS_HEADING, paragraphs=(HAS_CONVICTION,), strong=True)]
    for index, conviction in enumerate(convictions, start=1):
        rows = [
            ("Bản án", conviction.judgment),
            ("Tòa án", conviction.court),
            ("Tội danh", conviction.offence),
            ("Hình phạt", conviction.sentence),
            ("Tình trạng thi hành án", conviction.completion),
        ]
        if conviction.expunged:
            rows.append(("Xóa án tích", EXPUNGED))
        sections.append(Section(f"Án tích {index}", rows=tuple(rows)))
    return sections


def _require(**values: object) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgument(f"{name} must be a non-empty text")


@cache
def _renderable() -> frozenset[int]:
    """Code points every one of the three font files maps to a glyph."""
    covered: frozenset[int] | None = None
    for name in FONT_FILES.values():
        with TTFont(FONTS / name) as font:
            cmap = frozenset(font.getBestCmap())
        covered = cmap if covered is None else covered & cmap
    assert covered is not None
    return covered


def _text(value: object, name: str = "text") -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a text")
    text = unicodedata.normalize("NFC", value)
    covered = _renderable()
    for char in text:
        if unicodedata.category(char).startswith("C") or ord(char) not in covered:
            raise InvalidArgument(f"{name}: character U+{ord(char):04X} cannot be rendered")
    return text


def check_text(value: object, name: str = "text") -> str:
    """``value`` NFC-normalised, or INVALID_ARGUMENT naming ``name`` when the fonts cannot print one of its characters
    (or it holds a control character): what a caller checks before storing text it will render later."""
    return _text(value, name)


def _check_qr(qr_png: bytes) -> None:
    if not isinstance(qr_png, bytes | bytearray) or not qr_png.startswith(PNG_SIGNATURE):
        raise InvalidArgument("the QR image must be a PNG")
    if len(qr_png) > MAX_QR_BYTES:
        raise InvalidArgument(f"the QR image is limited to {MAX_QR_BYTES // 1024} KiB")
    try:
        with Image.open(io.BytesIO(qr_png)) as image:
            image.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InvalidArgument("the QR image is not a readable PNG") from None


def _check_frame(frame: _Frame) -> _Frame:
    if not isinstance(frame.verify_url, str) or not frame.verify_url.startswith(("https://", "http://")):
        raise InvalidArgument("verify_url must be an http(s) URL")
    if not isinstance(frame.title, str) or not frame.title.strip():
        raise InvalidArgument("the document needs a title")
    for section in frame.sections:
        if not isinstance(section.rows, tuple) or not all(
            isinstance(row, tuple) and len(row) == 2 for row in section.rows
        ):
            raise InvalidArgument("section rows are (label, value) pairs")
        if not isinstance(section.paragraphs, tuple):
            raise InvalidArgument("section paragraphs are a tuple of texts")
    return frame


@cache
def _font_files() -> dict[str, bytes]:
    """The three font files' bytes, read once a process."""
    return {style: (FONTS / name).read_bytes() for style, name in FONT_FILES.items()}


@cache
def _font_templates() -> tuple[TTFFont, ...]:
    """The three fonts as fpdf2 parses them (metrics, character widths, cmap, glyph ids, descriptor), once a
    process: parsing them for every document cost some 17 ms of a certificate's CPU. Read-only once built."""
    pdf = FPDF()
    for style, name in FONT_FILES.items():
        pdf.add_font(FAMILY, style, str(FONTS / name))
    fonts = tuple(pdf.fonts.values())
    for font in fonts:
        font.close()
    return fonts


_SHARED = frozenset(TTFFont.__slots__) - {"ttfont", "subset", "missing_glyphs", "biggest_size_pt", "_hbfont"}


def _add_fonts(pdf: FPDF) -> None:
    """Give ``pdf`` the three fonts from the process's parsed templates, as ``FPDF.add_font`` would: the parsed
    (immutable) parts shared, and of its own the subset of glyphs used, the missing glyphs and a fresh ``TTFont``
    on the file's bytes, which the subsetting at output cuts down (so each document still embeds only the glyphs
    it uses)."""
    files = _font_files()
    for template, style in zip(_font_templates(), FONT_FILES, strict=True):
        font = TTFFont.__new__(TTFFont)
        for name in _SHARED:
            if hasattr(template, name):  # fpdf2 leaves some slots unset (unicode_range)
                setattr(font, name, getattr(template, name))
        font.i = len(pdf.fonts) + 1
        font.ttfont = TTFont(io.BytesIO(files[style]), recalcTimestamp=False, lazy=True)
        # The shipped fonts' bounding boxes are right: not recomputing them on saving the subset spares
        # decoding and re-encoding every glyph's outline (half the time of a render).
        font.ttfont.recalcBBoxes = False
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font._hbfont = None
        font.subset = SubsetMap(font)
        pdf.fonts[font.fontkey] = font


SUBSET_CACHE_ENTRIES = 256
_subsets: OrderedDict[tuple[str, tuple[str, ...]], bytes] = OrderedDict()
_subsets_lock = threading.Lock()


def clear_subset_cache() -> None:
    with _subsets_lock:
        _subsets.clear()


def subset_cache_size() -> int:
    with _subsets_lock:
        return len(_subsets)


def _cached_subset(key: tuple[str, tuple[str, ...]]) -> bytes | None:
    with _subsets_lock:
        found = _subsets.get(key)
        if found is not None:
            _subsets.move_to_end(key)
        return found


def _keep_subset(key: tuple[str, tuple[str, ...]], data: bytes) -> None:
    with _subsets_lock:
        _subsets[key] = data
        _subsets.move_to_end(key)
        while len(_subsets) > SUBSET_CACHE_ENTRIES:
            _subsets.popitem(last=False)


class _CachedSubsets(OutputProducer):
    """fpdf2's output with the font subsets remembered (least recently used first out, per font and set of
    glyphs): a document whose font uses the same glyphs as an earlier one has fpdf2 cut that earlier subset,
    which holds exactly those glyphs in the same order, instead of the whole font — the same bytes for some half
    the cost (the labels in the regular face and the preamble in italics rarely change; the values in bold do).
    Each document still embeds only the glyphs it uses."""

    def _add_fonts(self, *args: Any, **kwargs: Any) -> Any:
        missed = []
        for font in self.fpdf.fonts.values():
            if not isinstance(font, TTFFont):
                continue
            key = (font.fontkey, tuple(sorted(font.subset.get_all_glyph_names())))
            cached = _cached_subset(key)
            if cached is None:
                missed.append((font, key))
                continue
            font.ttfont.close()
            font.ttfont = TTFont(io.BytesIO(cached), recalcTimestamp=False, lazy=True)
            font.ttfont.recalcBBoxes = False
        result = super()._add_fonts(*args, **kwargs)
        for font, key in missed:
            out = io.BytesIO()
            font.ttfont.save(out)  # the subset fpdf2 just cut
            _keep_subset(key, out.getvalue())
        return result


OUTPUT: type[OutputProducer] = _CachedSubsets
"""The output producer of every document (fpdf2's own, ``fpdf.output.OutputProducer``, gives the same bytes)."""


class _Pages(FPDF):
    """Every page ends with the document number and "Trang n/N"."""

    number = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FAMILY, "", 8)
        label = f"Số: {self.number} – " if self.number else ""
        self.cell(0, 5, f"{label}Trang {self.page_no()}/{{nb}}", align="R")


class _Writer:
    def __init__(self, frame: _Frame) -> None:
        self.frame = frame
        pdf = _Pages(orientation="P", unit="mm", format="A4")
        pdf.number = _text(frame.number, "number")
        _add_fonts(pdf)
        pdf.set_margins(MARGIN, 15.0, 15.0)
        pdf.set_auto_page_break(auto=True, margin=18.0)
        pdf.set_compression(True)
        day = frame.signature.day or date(2000, 1, 1)
        pdf.set_creation_date(datetime(day.year, day.month, day.day, tzinfo=UTC))
        pdf.set_title(_text(frame.title, "title"))
        if frame.authority:
            pdf.set_author(_text(frame.authority, "authority"))
        pdf.set_creator("Định danh")
        self.pdf = pdf

    def font(self, style: str = "", size: float = BODY) -> None:
        self.pdf.set_font(FAMILY, style, size)

    def centred(self, text: str, style: str = "", size: float = BODY, width: float = 0, x: float | None = None) -> None:
        pdf = self.pdf
        self.font(style, size)
        if x is not None:
            pdf.set_x(x)
        pdf.multi_cell(width, LINE, _text(text), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def header(self) -> None:
        pdf, frame = self.pdf, self.frame
        top = pdf.get_y()
        left_width, right_x = 75.0, MARGIN + 75.0
        right_width = pdf.w - pdf.r_margin - right_x
        bottom = top
        if frame.authority or frame.number:
            if frame.authority:
                self.centred(frame.authority, "B", 10.5, left_width)
                self.rule(MARGIN + left_width / 2, 25)
            if frame.number:
                self.centred(f"Số: {frame.number}", "", 10.5, left_width)
            bottom = pdf.get_y()
        pdf.set_y(top)
        self.centred(NATION, "B", 10.5, right_width, right_x)
        pdf.set_x(right_x)
        self.centred(MOTTO, "B", 10.5, right_width, right_x)
        self.rule(right_x + right_width / 2, 55)
        pdf.set_y(max(bottom, pdf.get_y()) + 10)
        self.centred(frame.title, "B", 15)
        pdf.ln(4)
        for line in frame.preamble:
            self.font("I", 10)
            pdf.multi_cell(0, 5.5, _text(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if frame.preamble:
            pdf.ln(3)

    def rule(self, centre: float, width: float) -> None:
        y = self.pdf.get_y() + 0.5
        self.pdf.set_line_width(0.3)
        self.pdf.line(centre - width / 2, y, centre + width / 2, y)
        self.pdf.set_y(y + 1.5)

    def section(self, section: Section) -> None:
        pdf = self.pdf
        if not isinstance(section.heading, str) or not section.heading.strip():
            raise InvalidArgument("every section needs a heading")
        if pdf.will_page_break(3 * LINE):
            pdf.add_page()
        self.font("B", BODY)
        pdf.multi_cell(0, LINE + 1, _text(section.heading, "section heading"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        for label, value in section.rows:
            self.font("", BODY)
            pdf.write(LINE, _text(label, "label") + ": ")
            self.font("B", BODY)
            pdf.write(LINE, _text(value, "value"))
            pdf.ln(LINE)
        for paragraph in section.paragraphs:
            self.font("B" if section.strong else "", BODY)
            pdf.multi_cell(0, LINE, _text(paragraph, "paragraph"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(3)

    def closing(self, qr_png: bytes) -> None:
        pdf, signature = self.pdf, self.frame.signature
        if pdf.will_page_break(QR_SIZE + 30):
            pdf.add_page()
        top = pdf.get_y() + 2
        right_x = pdf.w / 2
        right_width = pdf.w - pdf.r_margin - right_x
        pdf.set_y(top)
        if signature.place or signature.day:
            place = _text(signature.place, "place") if signature.place else ""
            when = f"ngày {signature.day:%d} tháng {signature.day:%m} năm {signature.day:%Y}" if signature.day else ""
            self.centred(", ".join(part for part in (place, when) if part), "I", BODY, right_width, right_x)
        for text, style in ((signature.heading, "B"), (signature.title, "B")):
            if text:
                self.centred(text, style, BODY, right_width, right_x)
        if signature.name:
            pdf.set_y(pdf.get_y() + 18)
            self.centred(signature.name, "B", BODY, right_width, right_x)
        pdf.image(io.BytesIO(qr_png), x=MARGIN, y=top, w=QR_SIZE, h=QR_SIZE)
        pdf.set_y(max(pdf.get_y(), top + QR_SIZE) + 4)
        self.font("I", 9)
        line = f"Kiểm tra tính xác thực: quét mã QR hoặc tải lên tại {self.frame.verify_url}"
        pdf.multi_cell(0, 5, _text(line, "verify_url"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _render(frame: _Frame, qr_png: bytes) -> bytes:
    _check_qr(qr_png)
    writer = _Writer(_check_frame(frame))
    try:
        writer.pdf.add_page()
        writer.header()
        for section in frame.sections:
            writer.section(section)
        writer.closing(bytes(qr_png))
        return bytes(writer.pdf.output(output_producer_class=OUTPUT))
    finally:
        for font in writer.pdf.fonts.values():  # fpdf2 opens the font files lazily and never closes them
            font.ttfont.close()
