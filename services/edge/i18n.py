"""The login pages' words, Vietnamese first, English on request (``?lang=en``, remembered in a cookie)."""

from __future__ import annotations

LANGUAGES = ("vi", "en")

TEXT: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Đăng nhập tài khoản định danh điện tử",
        "id_number": "Số định danh cá nhân",
        "password": "Mật khẩu",
        "sign_in": "Đăng nhập",
        "totp_title": "Xác thực hai lớp",
        "totp_help": "Nhập mã 6 chữ số trong ứng dụng xác thực của bạn.",
        "code": "Mã xác thực",
        "verify": "Xác nhận",
        "enroll_title": "Thiết lập xác thực hai lớp",
        "enroll_help": "Quét mã QR bằng ứng dụng xác thực (hoặc nhập khóa bên dưới), rồi nhập mã 6 chữ số.",
        "secret": "Khóa thiết lập",
        "consent_title": "Chia sẻ thông tin",
        "consent_help": "yêu cầu truy cập các thông tin sau của bạn:",
        "allow": "Đồng ý",
        "deny": "Từ chối",
        "wrong_credentials": "Sai số định danh hoặc mật khẩu.",
        "wrong_code": "Mã xác thực không đúng hoặc đã được dùng.",
        "throttled": "Bạn đã nhập sai quá nhiều lần. Vui lòng thử lại sau {seconds} giây.",
        "locked": "Tài khoản tạm khóa do nhập sai nhiều lần. Vui lòng đăng nhập từ thiết bị quen thuộc "
        "hoặc liên hệ cơ quan công an để mở khóa.",
        "expired": "Phiên đăng nhập đã hết hạn. Vui lòng bắt đầu lại từ cổng dịch vụ.",
        "error_title": "Không thể tiếp tục",
        "signed_out": "Bạn đã đăng xuất.",
        "logout_title": "Đăng xuất",
        "logout_help": "Bạn có muốn đăng xuất khỏi tài khoản định danh điện tử trên thiết bị này?",
        "logout_confirm": "Đăng xuất",
        "assurance_title": "Cần tài khoản định danh điện tử mức độ {required}",
        "assurance_help": "{client} yêu cầu tài khoản định danh điện tử mức độ {required}. Tài khoản của bạn đang ở "
        "mức độ {level} (tự kích hoạt trực tuyến), nên không thể tiếp tục.",
        "assurance_how": "Để nâng lên mức độ {required}, hãy mang thẻ căn cước đến cơ quan Công an cấp xã nơi bạn cư "
        "trú để được xác minh trực tiếp. Sau khi được xác minh, hãy đăng nhập lại từ cổng dịch vụ.",
        "assurance_back": "Quay lại {client}",
        "language": "English",
        "scope_openid": "Định danh tài khoản",
        "scope_profile": "Họ tên, ngày sinh, giới tính, quốc tịch",
        "scope_address": "Địa chỉ thường trú",
        "scope_phone": "Số điện thoại",
        "scope_national_id": "Số định danh cá nhân (12 số)",
        "scope_offline_access": "Duy trì truy cập khi bạn không trực tuyến",
        "scope_vault.read": "Xem giấy tờ trong Kho dữ liệu cá nhân",
        "scope_vault.write": "Thêm và xóa giấy tờ trong Kho dữ liệu cá nhân",
        "scope_consent.manage": "Xem, chấp thuận, tạm dừng và thu hồi các lần bạn đồng ý chia sẻ giấy tờ",
        "scope_log.read": "Xem lịch sử truy cập dữ liệu của bạn",
        "scope_issuance.apply": "Nộp và theo dõi hồ sơ đề nghị cấp Phiếu lý lịch tư pháp",
        "scope_health.read": "Xem Sổ sức khỏe điện tử của bạn",
        "consent_resources": "và được dùng các dịch vụ sau thay mặt bạn:",
        "resource_urn:dinhdanh:service:vault": "Xem và thay đổi giấy tờ trong Kho dữ liệu cá nhân",
        "resource_urn:dinhdanh:service:registry": "Đọc hồ sơ của bạn trong Cơ sở dữ liệu quốc gia về dân cư",
        "resource_urn:dinhdanh:service:consent": "Xem và quản lý các lần bạn đồng ý chia sẻ dữ liệu",
        "resource_urn:dinhdanh:service:issuance": "Đề nghị cơ quan nhà nước cấp giấy tờ cho bạn",
        "resource_urn:dinhdanh:service:log": "Đọc nhật ký truy cập dữ liệu của bạn, kèm bằng chứng",
        "resource_urn:dinhdanh:service:health": "Đọc Sổ sức khỏe điện tử của bạn",
    },
    "en": {
        "title": "Sign in with your national e-identity",
        "id_number": "Personal ID number",
        "password": "Password",
        "sign_in": "Sign in",
        "totp_title": "Two-step verification",
        "totp_help": "Enter the 6-digit code from your authenticator app.",
        "code": "Verification code",
        "verify": "Verify",
        "enroll_title": "Set up two-step verification",
        "enroll_help": "Scan the QR code with an authenticator app (or type the key below), "
        "then enter the 6-digit code.",
        "secret": "Setup key",
        "consent_title": "Share your information",
        "consent_help": "asks to access the following information about you:",
        "allow": "Allow",
        "deny": "Deny",
        "wrong_credentials": "Wrong ID number or password.",
        "wrong_code": "The code is wrong or was already used.",
        "throttled": "Too many failed attempts. Please try again in {seconds} seconds.",
        "locked": "The account is paused after repeated failures. Sign in from a device you used before, "
        "or ask a police service counter to unlock it.",
        "expired": "The sign-in expired. Please start again from the portal.",
        "error_title": "Cannot continue",
        "signed_out": "You are signed out.",
        "logout_title": "Sign out",
        "logout_help": "Do you want to sign out of your national e-identity on this device?",
        "logout_confirm": "Sign out",
        "assurance_title": "A level {required} e-identity account is needed",
        "assurance_help": "{client} requires a level {required} national e-identity account. Yours is at level "
        "{level} (activated online by yourself), so the sign-in cannot continue.",
        "assurance_how": "To reach level {required}, bring your citizen identity card to the police office of your "
        "commune or ward to be verified in person. Once verified, sign in again from the portal.",
        "assurance_back": "Back to {client}",
        "language": "Tiếng Việt",
        "scope_openid": "Your account identifier",
        "scope_profile": "Name, date of birth, sex, nationality",
        "scope_address": "Permanent address",
        "scope_phone": "Phone number",
        "scope_national_id": "Personal ID number (12 digits)",
        "scope_offline_access": "Keep access while you are offline",
        "scope_vault.read": "See the papers in your personal data store",
        "scope_vault.write": "Add and delete papers in your personal data store",
        "scope_consent.manage": "See, approve, pause and revoke the sharing of your papers",
        "scope_log.read": "See the history of accesses to your data",
        "scope_issuance.apply": "Apply for criminal-record certificates and follow your applications",
        "scope_health.read": "See your electronic health book",
        "consent_resources": "and to use these services on your behalf:",
        "resource_urn:dinhdanh:service:vault": "See and change the papers in your personal data store",
        "resource_urn:dinhdanh:service:registry": "Read your record in the national population database",
        "resource_urn:dinhdanh:service:consent": "See and manage the data sharing you agreed to",
        "resource_urn:dinhdanh:service:issuance": "Ask government agencies to issue papers to you",
        "resource_urn:dinhdanh:service:log": "Read the log of accesses to your data, with its proofs",
        "resource_urn:dinhdanh:service:health": "Read your electronic health book",
    },
}


def pick(query_lang: str | None, cookie_lang: str | None) -> str:
    for lang in (query_lang, cookie_lang):
        if lang in LANGUAGES:
            return lang
    return "vi"
