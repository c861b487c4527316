"""The language of a request (Accept-Language, zh-CN by default) and the catalogue of the API's errors."""

import ast
import pathlib

import pytest

from backend import errors
from backend.i18n import PROBLEMS, message, negotiate, problem_text

ROOT = pathlib.Path(__file__).resolve().parents[3]
PACKAGES = ("auth", "backend", "codes", "console", "miniapps", "payments")
# codes whose detail carries specifics the catalogue cannot know (an amount, a state, a list of names),
# and the generic codes raised with such details: a Chinese answer keeps the raised English detail, under
# a Chinese title
ENGLISH_DETAIL = {
    "bad_request",
    "invalid_input",
    "conflict",
    "order_not_payable",
    "order_not_refundable",
    "refund_exceeds_payment",
    "unknown_channel",
    "channel_refund_unavailable",
    "no_reconciliation",
}


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
    # a code whose detail has specifics the catalogue does not know keeps them, under a Chinese title
    assert problem_text(409, "refund_exceeds_payment", "Conflict", "at most 300 fen", "zh-CN") == (
        "与当前状态冲突",
        "at most 300 fen",
    )
    # templates take the error's members; without them the raised detail stays
    assert message("miniapp_not_enabled", "zh-CN", app_id="x", enabled="transit") == (
        "小程序 x 未启用（已启用：transit；见 SHENGSHI_MINIAPPS）"
    )
    assert problem_text(422, "miniapp_not_enabled", "t", "raised", "zh-CN")[1] == "raised"


def _raised_codes() -> dict[str, str]:
    """Every error code raised by name in the packages: code -> where."""
    names = {
        c.__name__ for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.AppError)
    }
    names |= {"_invalid_grant", "invalid_token"}
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if func not in names:
                    continue
                for kw in node.keywords:
                    if (
                        kw.arg == "code"
                        and isinstance(kw.value, ast.Constant)
                        and isinstance(kw.value.value, str)
                    ):
                        found.setdefault(kw.value.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


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
