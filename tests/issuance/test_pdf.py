"""The certificate rendered as a PDF (issuance/pdf.py): Vietnamese text survives extraction exactly."""

from __future__ import annotations

import io
import unicodedata
from datetime import date

import pytest
import segno
from pypdf import PdfReader

from core.errors import InvalidArgument
from issuance.pdf import (
    CertificateView,
    Conviction,
    Holder,
    Section,
    Signature,
    render_certificate,
    render_document,
)
from vault.content_types import PDF, Sniffer

VERIFY_URL = "https://dinhdanh.gov.vn/verify"


def qr_png(text: str = "HC1:NCFOXN%TS3DH") -> bytes:
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="png", scale=4)
    return out.getvalue()


def holder(**changes: object) -> Holder:
    fields: dict[str, object] = {
        "full_name": "Nguyễn Thị Ánh",
        "sex": "Nữ",
        "date_of_birth": date(1990, 5, 17),
        "place_of_birth": "Xã Đông Hưng, huyện Đông Hưng, tỉnh Thái Bình",
        "nationality": "Việt Nam",
        "ethnicity": "Kinh",
        "residence": "Số 12 phố Hàng Bạc, phường Hoàn Kiếm, thành phố Hà Nội",
        "id_number": "001190012345",
        "father": "Nguyễn Văn Đức",
        "mother": "Trần Thị Hường",
        "spouse": "Lê Quốc Việt",
    }
    fields.update(changes)
    return Holder(**fields)  # type: ignore[arg-type]


def view(**changes: object) -> CertificateView:
    fields: dict[str, object] = {
        "form": 1,
        "number": "2026/000123/LLTP",
        "authority": "SỞ TƯ PHÁP THÀNH PHỐ HÀ NỘI",
        "holder": holder(),
        "convictions": (),
        "ban": None,
        "place": "Hà Nội",
        "issued_on": date(2026, 12, 1),
        "signer_title": "GIÁM ĐỐC",
        "signer_name": "Phạm Minh Tuấn",
        "verify_url": VERIFY_URL,
    }
    fields.update(changes)
    return CertificateView(**fields)  # type: ignore[arg-type]


def text_of(pdf: bytes) -> str:
    """The extracted text, NFC, with line breaks (where a long value wraps) read as spaces."""
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(unicodedata.normalize("NFC", "\n".join(page.extract_text() for page in reader.pages)).split())


CONVICTION = Conviction(
    judgment="Bản án số 45/2019/HS-ST ngày 20/3/2019",
    court="Tòa án nhân dân quận Đống Đa, thành phố Hà Nội",
    offence="Trộm cắp tài sản (Điều 173 Bộ luật Hình sự)",
    sentence="09 tháng tù",
    completion="Đã chấp hành xong hình phạt ngày 15/12/2019",
)


def test_clean_form_1_reads_no_conviction_with_the_motto_and_the_holder() -> None:
    pdf = render_certificate(view(), qr_png())
    assert pdf.startswith(b"%PDF-")
    text = text_of(pdf)
    for expected in (
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "SỞ TƯ PHÁP THÀNH PHỐ HÀ NỘI",
        "PHIẾU LÝ LỊCH TƯ PHÁP SỐ 1",
        "2026/000123/LLTP",
        "Nguyễn Thị Ánh",
        "17/05/1990",
        "Xã Đông Hưng, huyện Đông Hưng, tỉnh Thái Bình",
        "001190012345",
        "TÌNH TRẠNG ÁN TÍCH",
        "Không có án tích",
        "Hà Nội, ngày 01 tháng 12 năm 2026",
        "GIÁM ĐỐC",
        "Phạm Minh Tuấn",
        f"Kiểm tra tính xác thực: quét mã QR hoặc tải lên tại {VERIFY_URL}",
    ):
        assert expected in text, expected
    # Form No. 1 names neither parents nor spouse; the ban section only when asked for.
    assert "Nguyễn Văn Đức" not in text
    assert "Lê Quốc Việt" not in text
    assert "CẤM ĐẢM NHIỆM CHỨC VỤ" not in text


def test_form_2_names_parents_and_spouse_and_lists_every_conviction() -> None:
    expunged = Conviction(
        judgment="Bản án số 7/2010/HS-PT ngày 02/8/2010",
        court="Tòa án nhân dân tỉnh Thái Bình",
        offence="Cố ý gây thương tích (Điều 104 Bộ luật Hình sự 1999)",
        sentence="Cải tạo không giam giữ 12 tháng",
        completion="Đã chấp hành xong ngày 02/8/2011",
        expunged=True,
    )
    pdf = render_certificate(
        view(form=2, authority="TRUNG TÂM LÝ LỊCH TƯ PHÁP QUỐC GIA", convictions=(CONVICTION, expunged)),
        qr_png(),
    )
    text = text_of(pdf)
    for expected in (
        "TRUNG TÂM LÝ LỊCH TƯ PHÁP QUỐC GIA",
        "PHIẾU LÝ LỊCH TƯ PHÁP SỐ 2",
        "Nguyễn Văn Đức",
        "Trần Thị Hường",
        "Lê Quốc Việt",
        "Có án tích",
        "Bản án số 45/2019/HS-ST ngày 20/3/2019",
        "Tòa án nhân dân quận Đống Đa, thành phố Hà Nội",
        "Trộm cắp tài sản (Điều 173 Bộ luật Hình sự)",
        "09 tháng tù",
        "Đã chấp hành xong hình phạt ngày 15/12/2019",
        "Cố ý gây thương tích (Điều 104 Bộ luật Hình sự 1999)",
        "Đã được xóa án tích",
    ):
        assert expected in text, expected
    assert "Không có án tích" not in text


def test_the_ban_section_shows_when_asked_for() -> None:
    text = text_of(
        render_certificate(view(ban="Không bị cấm đảm nhiệm chức vụ, thành lập, quản lý doanh nghiệp"), qr_png())
    )
    assert "CẤM ĐẢM NHIỆM CHỨC VỤ, THÀNH LẬP, QUẢN LÝ DOANH NGHIỆP, HỢP TÁC XÃ" in text
    assert "Không bị cấm đảm nhiệm chức vụ, thành lập, quản lý doanh nghiệp" in text


def test_decomposed_input_renders_as_composed_text() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Ánh")
    assert decomposed != "Nguyễn Thị Ánh"
    assert "Nguyễn Thị Ánh" in text_of(render_certificate(view(holder=holder(full_name=decomposed)), qr_png()))


def test_the_qr_image_is_embedded() -> None:
    reader = PdfReader(io.BytesIO(render_certificate(view(), qr_png())))
    images = [image for page in reader.pages for image in page.images]
    assert len(images) == 1


def test_the_vault_accepts_the_pdf() -> None:
    sniffer = Sniffer()
    sniffer.feed(render_certificate(view(), qr_png()))
    assert sniffer.finish() == PDF


def test_rendering_is_deterministic() -> None:
    assert render_certificate(view(), qr_png()) == render_certificate(view(), qr_png())


def test_many_convictions_flow_onto_further_pages() -> None:
    pdf = render_certificate(view(form=2, convictions=(CONVICTION,) * 12), qr_png())
    reader = PdfReader(io.BytesIO(pdf))
    pages = len(reader.pages)
    assert pages > 1
    text = text_of(pdf)
    assert text.count("Trộm cắp tài sản (Điều 173 Bộ luật Hình sự)") == 12
    assert "Án tích 12" in text
    for page in range(1, pages + 1):
        assert f"Số: 2026/000123/LLTP – Trang {page}/{pages}" in text


@pytest.mark.parametrize(
    "qr",
    [b"", b"not a png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20],
    ids=["empty", "not-png", "truncated-png"],
)
def test_a_bad_qr_image_is_refused(qr: bytes) -> None:
    with pytest.raises(InvalidArgument, match="QR"):
        render_certificate(view(), qr)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"form": 3}, "form"),
        ({"number": ""}, "number"),
        ({"holder": holder(full_name="  ")}, "full_name"),
        ({"holder": holder(full_name="Ánh \U0001f600")}, "cannot be rendered"),
        ({"holder": holder(full_name="Ánh\x00")}, "cannot be rendered"),
        ({"verify_url": "ftp://x/verify"}, "verify_url"),
        ({"convictions": ("not a conviction",)}, "conviction"),
    ],
)
def test_bad_certificate_fields_are_refused(changes: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        render_certificate(view(**changes), qr_png())


def test_the_generic_document_renders_sections() -> None:
    pdf = render_document(
        "PHIẾU KHÁM BỆNH",
        [
            Section(
                "Thông tin hành chính", rows=(("Họ và tên", "Nguyễn Thị Ánh"), ("Cơ sở khám", "Bệnh viện Bạch Mai"))
            ),
            Section("Chẩn đoán", paragraphs=("J06.9 – Nhiễm trùng hô hấp trên cấp tính, không đặc hiệu",)),
        ],
        qr_png(),
        verify_url=VERIFY_URL,
    )
    text = text_of(pdf)
    for expected in (
        "PHIẾU KHÁM BỆNH",
        "Thông tin hành chính",
        "Họ và tên",
        "Bệnh viện Bạch Mai",
        "J06.9 – Nhiễm trùng hô hấp trên cấp tính, không đặc hiệu",
        "Độc lập - Tự do - Hạnh phúc",
        f"Kiểm tra tính xác thực: quét mã QR hoặc tải lên tại {VERIFY_URL}",
    ):
        assert expected in text, expected


def test_the_generic_document_refuses_bad_sections() -> None:
    with pytest.raises(InvalidArgument, match="title"):
        render_document("", [], qr_png(), verify_url=VERIFY_URL)
    with pytest.raises(InvalidArgument, match="section"):
        render_document("X", ["not a section"], qr_png(), verify_url=VERIFY_URL)  # type: ignore[list-item]


def test_every_vietnamese_letter_renders_in_every_style() -> None:
    letters = "".join(chr(c) for c in range(0x1EA0, 0x1EFA)) + "ĂăÂâĐđÊêÔôƠơƯư" + "ÀÁÃÈÉÊÌÍÒÓÕÙÚÝàáãèéìíòóõùúýĨĩŨũ"
    assert len(set(letters)) == 134  # every precomposed Vietnamese letter, upper and lower case
    words = [letters[i : i + 12] for i in range(0, len(letters), 12)]
    pdf = render_document(
        "Bảng chữ cái",
        [Section("Chữ cái", rows=tuple((word, word) for word in words), paragraphs=(" ".join(words),))],
        qr_png(),
        verify_url=VERIFY_URL,
        signature=Signature(place=" ".join(words[:2]), day=date(2026, 12, 1)),  # italic
    )
    text = text_of(pdf)
    for word in words:
        assert text.count(word) >= 3, word  # label (regular), value (bold), paragraph
    assert f"{words[0]} {words[1]}, ngày 01 tháng 12 năm 2026" in text  # italic
