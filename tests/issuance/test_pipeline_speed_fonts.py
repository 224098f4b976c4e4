"""The certificate pipeline made cheaper without changing what it produces (correctness only, never timed): the
fonts parsed once a process yet each document embeds only its own glyphs, byte for byte what fpdf2's own
``add_font`` gives; the QR's fixed mask (ISO/IEC 18004 §7.8) keeps the symbol's version and error level."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import segno
from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.output import OutputProducer
from PIL import Image
from pypdf import PdfReader

from issuance import pdf, qr
from tests.issuance.test_pdf import holder, qr_png, text_of, view


def _per_document_fonts(target: FPDF) -> None:
    """What issuance.pdf did before: fpdf2 parses each font file for every document."""
    for style, name in pdf.FONT_FILES.items():
        target.add_font(pdf.FAMILY, style, str(pdf.FONTS / name))
    for font in target.fonts.values():
        font.ttfont.recalcBBoxes = False


def _embedded_glyphs(document: bytes) -> dict[str, int]:
    """Each embedded font's name → the number of glyphs its subset holds."""
    reader = PdfReader(io.BytesIO(document))
    found: dict[str, int] = {}
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            descendant = font["/DescendantFonts"][0].get_object()
            data = descendant["/FontDescriptor"]["/FontFile2"].get_data()
            with TTFont(io.BytesIO(data)) as parsed:
                found[str(font["/BaseFont"])] = len(parsed.getGlyphOrder())
    return found


def test_the_rendered_bytes_are_those_of_fonts_parsed_for_each_document(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [
        view(),
        view(form=2, holder=holder(full_name="Trần Thị Bích Ngọc", residence="Thôn Đông, xã Yên Thế, tỉnh Bắc Giang")),
        view(number="HN-261201-0000017", holder=holder(full_name="Lê Ỷ Ửng", father="Phạm Ỹ")),
    ]
    shared = [pdf.render_certificate(sample, qr_png()) for sample in samples]
    monkeypatch.setattr(pdf, "_add_fonts", _per_document_fonts)
    fresh = [pdf.render_certificate(sample, qr_png()) for sample in samples]
    assert shared == fresh


def test_the_fonts_are_parsed_once_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    pdf.render_certificate(view(), qr_png())
    calls: list[str] = []
    original = FPDF.add_font

    def counting(self: FPDF, *args: object, **kwargs: object) -> None:
        calls.append(str(args[:2]))
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(FPDF, "add_font", counting)
    for name in ("Nguyễn Văn An", "Đặng Thị Huệ", "Hoàng Quốc Việt"):
        pdf.render_certificate(view(holder=holder(full_name=name)), qr_png())
    assert calls == []


def test_each_document_embeds_only_the_glyphs_it_uses() -> None:
    short = pdf.render_document("Ờ", [pdf.Section("A", rows=(("B", "C"),))], qr_png(), verify_url="https://x.vn")
    rare = "Ỷ Ửng Ỹ Ỵ Ẵ Ẳ Ặ Ẩ Ẫ Ậ Ể Ễ Ệ Ổ Ỗ Ộ Ở Ỡ Ợ Ừ Ử Ữ Ự"
    long = pdf.render_certificate(view(holder=holder(full_name=rare)), qr_png())
    again = pdf.render_document("Ờ", [pdf.Section("A", rows=(("B", "C"),))], qr_png(), verify_url="https://x.vn")
    assert again == short  # what a longer document used before does not leak into the next
    small, large = _embedded_glyphs(short), _embedded_glyphs(long)
    with TTFont(pdf.FONTS / pdf.FONT_FILES["B"]) as whole:
        every = len(whole.getGlyphOrder())
    assert max(small.values()) < 60 < every
    assert sum(small.values()) < sum(large.values())


def test_documents_rendered_in_parallel_threads_are_each_right() -> None:
    names = ["Nguyễn Văn An", "Trần Thị Bích", "Lê Hoàng Long", "Phạm Thị Ửng", "Đỗ Quốc Việt", "Võ Thị Ỷ"]
    expected = {name: pdf.render_certificate(view(holder=holder(full_name=name)), qr_png()) for name in names}
    start = threading.Barrier(len(names))

    def render(name: str) -> bytes:
        start.wait()
        return pdf.render_certificate(view(holder=holder(full_name=name)), qr_png())

    with ThreadPoolExecutor(len(names)) as pool:
        got = dict(zip(names, pool.map(render, names), strict=True))
    assert got == expected
    for name in names:
        assert name in text_of(got[name])


def test_the_qr_mask_is_fixed_and_the_symbol_otherwise_segnos_choice() -> None:
    text = "VN1:" + "6BF" * 110  # about a certificate's 334 characters
    fixed, chosen = qr._symbol(text), segno.make(text, error=qr.ERROR_CORRECTION, micro=False)
    assert fixed.mask == qr.MASK
    assert (fixed.version, fixed.error, fixed.mode) == (chosen.version, chosen.error, chosen.mode)
    png = qr.render_qr(text)
    assert png.startswith(b"\x89PNG")


@pytest.mark.parametrize(("scale", "border"), [(4, 4), (1, 0), (3, 2)])
def test_the_qr_png_has_segnos_pixels(scale: int, border: int) -> None:
    text = "VN1:" + "6BF9" * 84
    ours = qr.render_qr(text, scale=scale, border=border)
    assert qr.PNG_WRITER == "pillow"
    theirs = io.BytesIO()
    qr._symbol(text).save(theirs, kind="png", scale=scale, border=border)
    with Image.open(io.BytesIO(ours)) as a, Image.open(io.BytesIO(theirs.getvalue())) as b:
        assert a.size == b.size
        assert a.convert("L").tobytes() == b.convert("L").tobytes()


def test_cached_subsets_give_the_bytes_of_fpdf2s_own_subsetting(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [
        view(),
        view(holder=holder(full_name="Trần Thị Bích Ngọc")),  # regular and italic glyphs as the first: cached
        view(form=2, holder=holder(full_name="Lê Ỷ Ửng", father="Phạm Ỹ", residence="Thôn Ẵ, xã Ặ, tỉnh Ẩ")),
        view(),  # every font's subset cached
    ]
    pdf.clear_subset_cache()
    cached = [pdf.render_certificate(sample, qr_png()) for sample in samples]
    assert pdf.subset_cache_size() > 0
    monkeypatch.setattr(pdf, "OUTPUT", OutputProducer)  # fpdf2's own: every font subset from the whole file
    plain = [pdf.render_certificate(sample, qr_png()) for sample in samples]
    assert cached == plain
