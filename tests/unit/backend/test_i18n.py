"""The language of a request (Accept-Language, zh-CN by default) and the catalogue of the API's errors."""

import ast
import pathlib
import string

import pytest

from backend import errors
from backend.i18n import PROBLEMS, message, negotiate, problem_text

ROOT = pathlib.Path(__file__).resolve().parents[3]
PACKAGES = (
    "auth",
    "backend",
    "codes",
    "console",
    "fees",
    "licences",
    "messages",
    "miniapps",
    "payments",
    "ratings",
)
# codes allowed to keep their raised English detail in a Chinese answer: none (specifics are the error's
# named values, which the catalogue's templates take)
ENGLISH_DETAIL: set[str] = set()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "zh-CN"),
        ("", "zh-CN"),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("en-GB;q=0.8, zh-TW;q=0.9", "zh-CN"),  # the higher q wins, not the first
        ("fr-FR, en;q=0.3", "en"),  # French is not spoken here; English is acceptable
        ("fr-FR, de", "zh-CN"),  # nothing we speak: the default
        ("en;q=0, *", "zh-CN"),  # q=0 refuses
        ("*", "zh-CN"),
        ("EN-us", "en"),
        ("en;q=abc, zh;q=0.1", "zh-CN"),  # an unreadable q counts as a refusal
        ("en;q=0.5, zh;q=0.5", "en"),  # a tie keeps the header's order
        (";;;,,,", "zh-CN"),
    ],
)
def test_the_language_of_a_request(header, expected):
    assert negotiate(header) == expected


def test_a_problem_in_both_languages():
    zh = problem_text(422, "invalid_phone", "The request is not valid", "phone must be ...", "zh-CN")
    assert zh == ("请求内容无效", PROBLEMS["invalid_phone"][0])
    en = problem_text(422, "invalid_phone", "The request is not valid", "phone must be ...", "en")
    assert en == ("The request is not valid", "phone must be ...")
    # specifics come as the error's named values; without them the raised detail stays
    params = {"refundable": 300}
    assert problem_text(409, "refund_exceeds_payment", "Conflict", "at most 300 fen", "zh-CN", params) == (
        "与当前状态冲突",
        "此订单最多还能退款 300 分",
    )
    assert problem_text(409, "refund_exceeds_payment", "Conflict", "at most 300 fen", "zh-CN")[1] == (
        "at most 300 fen"
    )
    # templates take the error's members; without them the raised detail stays
    assert message("miniapp_not_enabled", "zh-CN", app_id="x", enabled="transit") == (
        "小程序 x 未启用（已启用：transit；见 SHENGSHI_MINIAPPS）"
    )
    assert problem_text(422, "miniapp_not_enabled", "t", "raised", "zh-CN")[1] == "raised"


def _raises() -> list[tuple[str, set[str], str]]:
    """Every error raised with a code by name in the packages: (code, its other keywords, where)."""
    names = {
        c.__name__ for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.AppError)
    }
    names |= {"_invalid_grant", "invalid_token"}
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if func not in names:
                    continue
                keywords = {kw.arg for kw in node.keywords if kw.arg is not None}
                for kw in node.keywords:
                    if (
                        kw.arg == "code"
                        and isinstance(kw.value, ast.Constant)
                        and isinstance(kw.value.value, str)
                    ):
                        found.append((kw.value.value, keywords, f"{path.relative_to(ROOT)}:{node.lineno}"))
    return found


def _raised_codes() -> dict[str, str]:
    """Every error code raised by name in the packages: code -> where."""
    found: dict[str, str] = {}
    for code, _, where in _raises():
        found.setdefault(code, where)
    return found


def test_every_raise_names_the_values_its_chinese_text_needs():
    """A template's ``{name}`` comes from the error's members: each raise of the code passes them."""
    missing = []
    for code, keywords, where in _raises():
        if code not in PROBLEMS:
            continue
        fields = {f for _, f, _, _ in string.Formatter().parse(PROBLEMS[code][0]) if f}
        if lacking := fields - keywords - {"method", "path"}:
            missing.append((code, sorted(lacking), where))
    assert missing == []


def test_values_in_words_and_lists():
    from payments.registry import add_channel_terms, discover

    add_channel_terms(discover())  # the channels bring their Chinese names (the app does this at start-up)
    assert message("order_not_payable", "zh-CN", state="closed") == "此订单已关闭，不能再支付"
    assert message("order_not_payable", "en", state="closed") == "the order is closed"
    assert message("unknown_channel", "zh-CN", channel="alipay", available=["sandbox", "wechatpay"]) == (
        "本部署未开通支付宝（可用：沙箱支付、微信支付）"
    )
    assert "微信支付" in message("channel_refund_unavailable", "zh-CN", channel="wechatpay")
    assert message("operator_exists", "zh-CN", username="chief") == "后台账号 chief 已存在"
    assert (
        message("invalid_role", "zh-CN", roles=["readonly", "admin"])
        == "后台角色须为以下之一：readonly、admin"
    )


def test_every_error_code_has_its_chinese_and_english_text():
    raised = _raised_codes()
    assert len(raised) > 50  # the scan found the raises
    missing = {
        code: where for code, where in raised.items() if code not in PROBLEMS and code not in ENGLISH_DETAIL
    }
    assert missing == {}, "add these codes to backend/i18n.py PROBLEMS (or to ENGLISH_DETAIL here)"
    for cls in vars(errors).values():  # the generic codes of the error classes too
        if isinstance(cls, type) and issubclass(cls, errors.AppError):
            assert cls.code in PROBLEMS or cls.code in ENGLISH_DETAIL, cls
    for code, (zh, en) in PROBLEMS.items():
        assert zh and en, code
