"""Languages: every text a person reads comes in Simplified Chinese (``zh-CN``, the default) and English
(``en``), one language per screen.

* :func:`negotiate` picks the language of a request from its ``Accept-Language`` header (RFC 9110
  §12.5.4: q-values honoured, ``q=0`` refuses, ties keep the header's order); anything that is not
  English, no header at all, or a header we cannot read gives ``zh-CN``.
* :func:`locale_middleware` sets the request's language once, outside routing, so every layer that
  writes text for a person (problem+json, a gate's screen) reads the same answer from
  :func:`current_locale` without it being passed through every signature; outside a request (the
  CLI, background work) it is ``zh-CN``.
* :data:`PROBLEMS` is the catalogue of the API's errors, keyed by their stable ``code``. The ``code``
  never changes with the language; ``title`` and ``detail`` do. An English answer keeps the detail
  written where the error was raised (it is English and the most specific); a Chinese answer takes the
  catalogue's text for the code. Specifics (an amount, a state, a channel, a day) are the error's named
  values, which the templates take: ``{refundable}``, and ``{state:order_state}`` for a value written
  as a term of :data:`TERMS` (the order's state in words). A list is written with 、 between items.

Parsing the header is a dozen lines; the libraries that do it (werkzeug) are whole web frameworks, so
it is written here.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Literal

from litestar.types import ASGIApp, Receive, Scope, Send

Locale = Literal["zh-CN", "en"]
LOCALES: tuple[Locale, ...] = ("zh-CN", "en")
DEFAULT_LOCALE: Locale = "zh-CN"
_locale_var: ContextVar[Locale] = ContextVar("locale", default=DEFAULT_LOCALE)


def _match(tag: str) -> Locale | None:
    primary = tag.split("-", 1)[0]
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    return None


def negotiate(header: str | None) -> Locale:
    """The language for an ``Accept-Language`` header: the acceptable one with the highest q-value
    (the earlier on a tie); ``*`` or nothing we speak gives the default, ``zh-CN``."""
    if not header:
        return DEFAULT_LOCALE
    best: tuple[float, Locale] | None = None
    for part in header.split(",")[:32]:  # a header is short; never let one cost much
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0 or not tag:
            continue
        found = DEFAULT_LOCALE if tag == "*" else _match(tag)
        if found is not None and (best is None or q > best[0]):
            best = (q, found)
    return best[1] if best else DEFAULT_LOCALE


def current_locale() -> Locale:
    """The language of the request being served (``zh-CN`` outside a request)."""
    return _locale_var.get()


def pick(zh: str, en: str, locale: str | None = None) -> str:
    """One of two texts for the language (the current request's when ``locale`` is not given)."""
    return en if (locale or current_locale()) == "en" else zh


def locale_middleware(app: ASGIApp) -> ASGIApp:
    """Set the request's language from its ``Accept-Language`` header for everything below."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"accept-language"), b"")
        token = _locale_var.set(negotiate(header.decode("latin-1")))
        try:
            await app(scope, receive, send)
        finally:
            _locale_var.reset(token)

    return middleware


# ---- problem+json ----------------------------------------------------------------------------------
# Titles by status (the English ones are the error classes' and Litestar's own).
TITLES_ZH: dict[int, str] = {
    400: "请求有误",
    401: "需要登录认证",
    403: "无权执行此操作",
    404: "未找到",
    405: "不支持该请求方法",
    409: "与当前状态冲突",
    410: "已不再可用",
    413: "请求内容过大",
    415: "不支持的内容类型",
    422: "请求内容无效",
    429: "请求过于频繁",
    500: "服务器内部错误",
    503: "服务暂不可用",
}

# Values an error names that a Chinese text writes in words: ``{state:order_state}``.
TERMS: dict[str, dict[str, str]] = {
    "order_state": {
        "created": "尚未支付",
        "paying": "正在支付",
        "paid": "已支付",
        "partially_refunded": "已部分退款",
        "refunded": "已全额退款",
        "closed": "已关闭",
        "failed": "支付失败",
    },
    "appeal_decision": {"rejected": "申诉未获支持", "upheld": "申诉成立"},
    "case_state": {
        "open": "待核实",
        "rectifying": "整改中",
        "answered": "已反馈",
        "closed": "已办结",
        "appealed": "申诉中",
        "void": "已撤销",
    },
    "licence_status": {"valid": "有效", "suspended": "已暂停", "revoked": "已注销"},
    "request_state": {
        "pending": "待授权",
        "approved": "已授权",
        "refused": "已拒绝",
        "expired": "已过期",
        "used": "已使用",
        "revoked": "已撤回",
    },
    # a payment channel's name in Chinese comes from the channel (payments/registry.py adds them)
    "channel": {"this channel": "该渠道"},
}


def add_terms(kind: str, words: Mapping[str, str]) -> None:
    """Terms a plugin brings (a payment channel's Chinese name): ``{value:kind}`` writes them."""
    TERMS.setdefault(kind, {}).update(words)


# code -> (zh-CN, en). ``{method}`` and ``{path}`` are the request's; other ``{name}``s come from the
# error's extension members (a raise names its specifics: ``Conflict(..., state=row["state"])``). A
# code whose template names a member the error does not carry keeps its raised (English) detail.
PROBLEMS: dict[str, tuple[str, str]] = {
    # the generic codes: what a raise without a code of its own says
    "bad_request": ("请求有误", "Bad request"),
    "invalid_input": ("请求内容无效", "The request is not valid"),
    "conflict": ("与当前状态冲突", "Conflicts with the current state"),
    # the HTTP layer
    "malformed_request": ("无法读取请求内容", "The request could not be read"),
    "invalid_body": ("请求内容不符合要求，详见 errors", "The request body is not valid; see errors"),
    "invalid_parameters": (
        "请求参数不符合要求，详见 errors",
        "The request parameters are not valid; see errors",
    ),
    "unauthorized": ("需要登录认证", "Authentication required"),
    "forbidden": ("无权执行此操作", "Not allowed"),
    "not_found": ("未找到所请求的内容", "Not found"),
    "gone": ("已不再可用", "No longer available"),
    "method_not_allowed": ("{path} 不支持 {method} 请求", "{method} is not allowed on {path}"),
    "body_too_large": ("请求内容过大", "The request body is too large"),
    "unsupported_media_type": ("不支持的内容类型", "Unsupported media type"),
    "rate_limited": ("请求过于频繁，请稍后再试", "Too many requests; try again later"),
    "internal_error": (
        "服务器内部出错；报告问题时请提供请求编号。",
        "Something went wrong on our side; quote the request id if you report it.",
    ),
    "unavailable": ("服务暂不可用，请稍后再试", "Service unavailable; try again shortly"),
    "store_unavailable": (
        "后台服务暂无响应，请稍后再试",
        "A backing service is not answering; try again shortly.",
    ),
    "database_unavailable": (
        "数据库暂无响应，请稍后再试",
        "The database is not answering; try again shortly.",
    ),
    # identity
    "invalid_phone": ("请输入中国大陆手机号，例如 13812345678", "phone must be a mainland mobile number"),
    "invalid_id_number": (
        "身份证号码无效（应为 18 位，出生日期和校验位须正确）",
        "the ID number is not valid",
    ),
    "invalid_name": ("姓名须为 1 至 64 个字", "real_name must be 1-64 letters"),
    "id_number_attempts_exhausted": (
        "此身份证号码今日核验次数已达上限，请使用人脸核验",
        "too many attempts for this ID number today; verify with a face check",
    ),
    "id_number_taken": ("此身份证号码已属于另一个账户", "this ID number belongs to another account"),
    "real_name_incomplete": (
        "姓名和身份证号码须一并核验，请同时填写",
        "real_name and id_number are verified together: give both",
    ),
    "real_name_mismatch": (
        "姓名与身份证号码核验不一致，未保存",
        "the name and ID number could not be verified together",
    ),
    "realname_unavailable": (
        "实名认证服务暂不可用，请稍后再试",
        "real-name verification is unavailable; try again shortly",
    ),
    # the systems that own entitlements (codes/owners.py)
    "bad_record": ("记录格式无效", "the record is not a valid change"),
    "bad_value": ("权益内容无效", "the entitlement's value is not valid for this kind"),
    "bad_id_number": ("身份证号码无效", "the ID number is not valid"),
    "bad_time": ("生效时间或有效期无效", "the effective time or validity is not valid"),
    "too_long": ("单条记录过长", "the record is too long"),
    "line_too_long": ("上传内容有一行过长，请用 NDJSON", "a line of the upload is too long: send NDJSON"),
    "ndjson_required": ("请以 NDJSON 格式上传（每行一条记录）", "send the changes as NDJSON, one per line"),
    "upload_not_found": ("没有这个上传批次", "no such upload"),
    "upload_too_large": ("上传内容过大", "the upload is too large"),
    "upload_stalled": ("上传中断：长时间未收到数据", "the upload stalled: no data came for a minute"),
    "client_disconnected": (
        "客户端在上传完成前断开了连接",
        "the client disconnected before the upload ended",
    ),
    "request_timeout": ("请求内容到达超时", "the request took too long to arrive"),
    "otp_invalid": ("验证码错误或已过期", "the code is wrong or has expired"),
    "otp_locked": ("验证码错误次数过多，请重新获取", "too many wrong codes; request a new one"),
    "sms_unavailable": ("短信暂时无法发送，请稍后再试", "the SMS could not be sent; try again shortly"),
    "no_sms": ("最近没有发往此手机号的短信", "no SMS was sent to this phone recently"),
    "invalid_token": ("登录已失效（令牌无效、已过期或已退出），请重新登录", "the access token is not valid"),
    "refresh_token_reused": (
        "此登录凭据已被使用过，为安全起见该会话已退出，请重新登录",
        "this refresh token was already used; the session has been signed out",
    ),
    "invalid_grant": ("登录凭据无效（已使用、已过期或已撤销），请重新登录", "the grant is not valid"),
    "account_blocked": ("此账户已被冻结，请联系服务台", "this account is blocked; contact the service desk"),
    "account_not_found": ("账户不存在", "no such account"),
    "device_not_found": ("设备不存在", "no such device"),
    "invalid_client": ("设备或应用凭证无效", "the client credential is not valid"),
    "wrong_client_kind": ("此接口不接受这类凭证", "this route is for another kind of credential"),
    "credential_not_found": ("凭证不存在", "no such credential"),
    "unknown_client_kind": ("凭证类型须为以下之一：{kinds}", "kind must be one of {kinds}"),
    # mini-apps
    "miniapp_not_enabled": (
        "小程序 {app_id} 未启用（已启用：{enabled}；见 SHENGSHI_MINIAPPS）",
        "mini-app {app_id} is not enabled (enabled: {enabled}; see SHENGSHI_MINIAPPS)",
    ),
    "unknown_scan_context": (
        "扫码场景须为 {app_id} 的场景之一：{contexts}",
        "the context must be one of {app_id}'s scan contexts: {contexts}",
    ),
    "miniapp_not_found": ("小程序不存在", "no such mini-app"),
    "wrong_miniapp": ("此凭证属于另一个小程序", "this credential belongs to another mini-app"),
    "invalid_scope": ("小程序请求了其清单未声明的权限", "the mini-app may not ask for these scopes"),
    "insufficient_scope": ("此令牌未获授予所需的权限", "this token does not carry the scope"),
    "grant_revoked": ("市民已撤销对此小程序的授权", "the citizen has revoked this mini-app's access"),
    "grant_not_found": ("没有对此小程序的有效授权", "no active grant for this mini-app"),
    "slot_not_found": ("号源不存在", "no such slot"),
    "slot_full": ("此时段已约满", "this slot is fully booked"),
    "appointment_not_found": ("未找到此预约", "no booked appointment with that id"),
    "visit_not_found": ("就诊记录不存在", "no such visit"),
    "already_billed": ("此次就诊已出账单", "this visit has been billed already"),
    "insurance_card_not_found": ("您尚未关联医保电子凭证", "no insurance card linked or asked for"),
    "already_rated": (
        "此项服务已评价（每项服务只能评价一次）",
        "this service has been rated already (one rating each)",
    ),
    "unknown_car_park": ("停车场不存在", "no such car park"),
    # 一码借阅 library (miniapps/library/rules.py REFUSALS holds the same texts)
    "unknown_branch": ("未知的分馆", "unknown branch"),
    "unknown_library": ("未知的图书馆", "unknown library"),
    "unknown_item": ("未知的图书条码", "unknown item barcode"),
    "unknown_title": ("馆藏中没有此书", "no such title in the catalogue"),
    "other_library": ("此书属于其他图书馆", "this copy belongs to another library"),
    "on_loan": ("此书已被借出", "this copy is on loan"),
    "already_yours": ("您已借阅此书", "you have this book on loan already"),
    "item_unavailable": ("此书暂不可借", "this copy cannot be lent"),
    "held_for_another": ("此书为其他读者预约保留", "this copy is kept for another reader's hold"),
    "reader_blocked": ("借阅权限已被图书馆暂停", "the library has suspended your borrowing"),
    "deposit_required": (
        "您有未缴罚款，需先缴纳押金或缴清罚款",
        "unpaid fines: pay them or a deposit before borrowing",
    ),
    "loan_limit": ("已达借阅数量上限", "you have as many loans as the library allows"),
    "not_on_loan": ("此书未被借出", "this copy is not on loan"),
    "not_your_loan": ("您没有借阅此书", "you do not have this copy on loan"),
    "held": ("其他读者已预约此书，不能续借", "another reader has a hold on it: no renewal"),
    "overdue": ("已逾期，请归还（罚款在归还时结算）", "overdue: return it (the fine is charged then)"),
    "renewal_limit": ("已达续借次数上限", "no renewals left"),
    "copy_available": ("此书有在架副本，可直接借阅", "a copy is on the shelf: borrow it"),
    "already_held": ("您已预约此书", "you have a hold on this title already"),
    "hold_not_found": ("未找到有效的预约", "no such hold of yours"),
    "deposit_not_needed": ("您信用良好，免押金借阅", "you are in good standing: no deposit needed"),
    "no_deposit": ("您没有已缴纳的押金", "you have no deposit paid"),
    "deposit_in_use": (
        "尚有在借图书或未缴罚款，押金暂不能退还",
        "books on loan or fines unpaid: the deposit cannot be returned yet",
    ),
    "unknown_action": ("未知的操作", "unknown desk action"),
    "item_required": ("请扫描图书条码", "scan the book's barcode"),
    "isbn_required": ("请提供 ISBN", "an ISBN is needed"),
    "invalid_isbn": ("ISBN 无效", "not a valid ISBN-13"),
    "barcode_taken": ("此条码的副本已存在", "a copy with that barcode exists"),
    "unknown_reader": ("未知的读者", "no such reader"),
    "car_park_full": ("没有可预约的空余车位", "no free space to reserve"),
    "reservation_not_found": ("未找到有效的车位预约", "no active reservation with that id"),
    "plate_not_found": ("您没有登记此车牌", "no such plate of yours"),
    "session_not_found": ("场次不存在", "no such session"),
    "sold_out": ("此场次余票不足", "not enough places left in this session"),
    "deferred_needs_citizen": (
        "先用后付的订单须指明市民（按其支付协议扣款）",
        "a deferred order is charged against a citizen's payment agreement: name the citizen",
    ),
    "order_claimed": ("另一位市民正在支付此订单", "another citizen is paying this order"),
    "channel_not_enabled": ("此支付渠道在本部署未启用", "this payment channel is not enabled here"),
    "time_zone_required": (
        "{field} 须带时区（RFC 3339，例如 2030-01-01T08:00:00+08:00）",
        "{field} needs a time zone (RFC 3339)",
    ),
    "session_over": ("该场次已结束，请选择之后的场次", "this session is over; choose a later one"),
    "ticket_not_found": ("门票不存在", "no such ticket"),
    "not_refundable": ("此门票已使用或已退款，不能退款", "this ticket cannot be refunded"),
    "too_late_to_refund": ("游览日前一天起不能退款", "refunds close the day before the visit"),
    "hotel_not_found": ("酒店不存在", "no such hotel"),
    # 扫码挪车 car moving
    "invalid_plate": (
        "车牌号码格式不正确（省份简称、字母，再 5 或 6 位字母或数字，如 辽A12345）",
        "not a plate: a province's name, a letter, then 5 or 6 more (辽A12345)",
    ),
    "licence_requests_pending": (
        "您尚有 {most} 个行驶证授权申请未处理：请先在证照的“授权申请”中同意或拒绝，再登记车辆",
        "you have {most} requests to share a vehicle licence unanswered: approve or refuse them under your"
        " licences' requests first, then register the car",
    ),
    "car_not_found": ("您没有登记此车辆", "no such car of yours"),
    "sticker_not_found": ("挪车码不存在", "no such car sticker"),
    "sticker_paused": ("车主已暂停此挪车码", "the owner has paused this sticker"),
    "sticker_suspended": (
        "此挪车码因被举报已由运营人员停用；车主如有异议请联系客服",
        "the operators suspended this sticker after a report of misuse; its owner may contact the"
        " service to have it lifted",
    ),
    "sticker_not_suspended": ("此挪车码未被停用", "this sticker is not suspended"),
    "report_not_suspending": (
        "此举报关闭时未停用挪车码",
        "this report did not suspend a sticker when it was closed",
    ),
    "sticker_replaced": (
        "此挪车码已失效（车主已更换）",
        "this sticker is no longer valid: the owner replaced it",
    ),
    "carmove_rate_limited": ("挪车请求过于频繁，请稍后再试", "too many car-moving requests; try again later"),
    "unknown_reason": ("请从列表中选择挪车原因", "choose a reason from the list"),
    "move_request_not_found": ("挪车请求不存在", "no such car-moving request"),
    "move_request_closed": ("此挪车请求已结束", "the request is no longer waiting"),
    "photo_too_large": ("照片过大（上限 {most}）", "the photo is too large (at most {most})"),
    "photo_not_image": ("照片须为 JPEG 或 PNG 图片", "a photo is a JPEG or PNG image, sent as such"),
    "photo_exists": ("此请求已附有照片", "this request has a photo already"),
    "photo_not_found": ("此请求没有照片", "this request has no photo"),
    "unknown_answer": ("请从列表中选择回复", "choose an answer from the list"),
    "already_answered": ("此挪车请求已回复", "this request has been answered already"),
    "owner_unreachable": ("暂时无法联系车主", "the owner cannot be called"),
    "unknown_report_kind": ("请从列表中选择举报类型", "choose a kind of report from the list"),
    "report_not_found": ("举报不存在", "no such report"),
    "report_closed": ("此举报已处理", "this report is closed already"),
    "invalid_note": (
        "{field} 须在 60 字以内，且不含控制字符",
        "{field}: at most 60 characters, no control characters",
    ),
    "privacy_number_unavailable": ("隐私号服务暂不可用", "no privacy-number provider is available"),
    # 扫码门禁 doors
    "unknown_place": ("地点不存在", "no such place"),
    "unknown_building": ("该地点没有此楼栋", "no such building in this place"),
    "unknown_door": ("门禁不存在或不属于该地点", "no such door in this place"),
    "unknown_resident": ("该地点没有此住户记录", "no such resident here"),
    "not_pending": ("此申请已处理", "the request has been decided already"),
    "not_resident": ("此住户已移除", "the resident is not registered here"),
    "key_rotation_pending": ("新密钥尚在等待启用，请稍后再轮换", "a new key is waiting to take over already"),
    "visitor_not_found": ("该手机号尚未注册盛事通", "no citizen with this phone uses the app"),
    "visitor_is_host": ("住户本人无需访客通行证", "a resident needs no pass of their own"),
    "not_a_resident": ("只有该地点的住户可以邀请访客", "only a resident of this place may invite visitors"),
    "not_your_door": ("只能邀请访客通过您有权通行的门", "a resident invites through the doors they open"),
    "bad_window": ("结束时间须晚于开始时间", "the pass must end after it starts"),
    "window_over": ("结束时间已过", "the pass would end in the past"),
    "window_too_long": ("通行时段过长", "the pass's window is too long"),
    "window_too_far": ("开始时间太远", "the pass starts too far ahead"),
    "too_many_entries": ("通行次数过多（最多 {limit} 次）", "too many entries (at most {limit})"),
    "unknown_pass": ("未找到您的此通行证", "no such pass of yours"),
    "unknown_residence": ("未找到您的此住所", "no such residence of yours"),
    "place_busy": ("该地点正被同时登记，请重试", "the place was registered at the same moment; try again"),
    "duplicate_code": ("楼栋或门的编号重复", "a building or door code is given twice"),
    "invalid_place_code": (
        "地点编号须为 1-24 位字母、数字、“-”或“_”",
        "a place's code is 1-24 letters, digits, '-' or '_'",
    ),
    "code_of_another_place": ("编号已属于其他地点", "these codes belong to another place"),
    "too_many_passes": (
        "24 小时内邀请访客次数已达上限，请稍后再试",
        "too many visitor passes in 24 hours; try later",
    ),
    "pass_cancelled": ("此通行证已取消", "the pass is cancelled already"),
    "invalid_role_filter": ("role 须为 held 或 issued", "role is held or issued"),
    "no_such_citizen": (
        "没有使用此手机号或已实名认证此身份证号的用户",
        "no citizen with this phone or verified ID number",
    ),
    "invalid_citizen_query": ("请提供手机号或身份证号之一", "give a phone or an ID number, one of them"),
    "naive_time": ("时间须带时区（如 +08:00）", "times need a time zone (e.g. +08:00)"),
    "not_a_door": ("只有门禁设备可以获取门禁名单", "only a door's controller fetches a door list"),
    # civic services
    "queue_number_not_found": ("未找到等候中的此号码", "no waiting queue number with that id"),
    "service_not_found": ("该大厅没有此业务", "no such service at this hall"),
    "queue_empty": ("此业务暂无人等候", "nobody is waiting in this line"),
    # payments
    "invalid_amount": ("金额须为正整数（单位：分）", "amount must be a positive number of fen"),
    "reference_reused": ("此业务单号已用于另一笔订单", "this reference was used for a different order"),
    "order_not_found": ("订单不存在", "no such order"),
    "order_expired": ("订单已过期", "the order has expired"),
    "order_not_payable": ("此订单{state:order_state}，不能再支付", "the order is {state}"),
    "order_not_refundable": (
        "只有已支付的订单才能退款；此订单{state:order_state}",
        "only a paid order can be refunded; this one is {state}",
    ),
    "refund_exceeds_payment": (
        "此订单最多还能退款 {refundable} 分",
        "at most {refundable} fen can still be refunded",
    ),
    "unknown_channel": (
        "本部署未开通{channel:channel}（可用：{available:channel}）",
        "unknown channel {channel!r} (available: {available})",
    ),
    "unknown_pay_method": (
        "{channel:channel}不支持该支付方式（可用：{available}）",
        "{channel} is paid by {available}, not this method",
    ),
    "channel_refund_unavailable": (
        "本部署无法调用{channel:channel}的退款接口；请在该渠道的商户平台退款（其回调会在此生效）",
        "refunds through {channel} need its refund API, which this deployment cannot reach; refund at "
        "the channel's console (its callback is applied here)",
    ),
    "no_reconciliation": (
        "{channel:channel} {day} 尚未对账；请先运行 shengshi payments reconcile",
        "no reconciliation of {channel} for {day}; run 'shengshi payments reconcile'",
    ),
    # what a channel may answer the payment centre's own calls (payments._recovery), and its statistics
    "channel_trade_unpaid": (
        "支付渠道没有此订单的已付款交易",
        "the channel has no paid trade for this order",
    ),
    "channel_trade_closed": (
        "支付渠道已关闭该订单的交易，无法再付款",
        "the channel closed this trade; it can no longer be paid",
    ),
    "channel_refund_not_found": ("支付渠道没有这笔退款", "the channel has no such refund"),
    "invalid_statistics": (
        "统计区间无效：起始日期不得晚于截止日期，且最长 366 天",
        "the statistics' range is not valid: from is not after to, and it spans at most 366 days",
    ),
    "not_deferred": (
        "只有先享后付的订单才能按协议扣款",
        "only a deferred order is charged against the agreement",
    ),
    "agreement_unavailable": (
        "暂无可用的免密支付渠道，请在应用内支付此订单",
        "no payment-agreement channel is reachable; pay the order in the app instead",
    ),
    "channel_unavailable": (
        "此支付渠道暂不可用，请选择其他渠道",
        "this payment channel is not available here",
    ),
    # merchants and the pay code at the till (payments/paycode.py, payments/merchants.py)
    "paycode_code_expired": (
        "付款码已过期，请刷新后重新出示",
        "the code has expired; refresh it and show it again",
    ),
    "paycode_code_replayed": (
        "此付款码已使用，请刷新后重新出示",
        "this code has been used already; refresh it",
    ),
    "paycode_code_invalid": ("这不是有效的市民码", "this is not a valid citizen code"),
    "merchant_revoked": ("此收银台所属商户已注销", "this till's merchant is no longer registered"),
    "paycode_off": ("市民未开通付款码支付", "the citizen has not turned on paying by code"),
    "paycode_credit_limit": (
        "已超出信用额度：未付 {unpaid} 分，上限 {limit} 分",
        "over the credit limit: {unpaid} fen unpaid, at most {limit} fen on credit",
    ),
    "paycode_no_agreement": (
        "市民尚未与{channel:channel}签订免密支付协议",
        "the citizen has no payment agreement with {channel}",
    ),
    "paycode_bad_limit": ("单笔免确认限额须为 1 至 {max} 分", "the per-payment limit is 1 to {max} fen"),
    "paycode_bad_method": ("付款方式须为以下之一：{available}", "a pay code pays by one of {available}"),
    "confirmation_not_found": ("没有这笔待确认的付款", "no such confirmation"),
    "confirmation_expired": ("确认时间已过，付款已取消", "the confirmation window has passed"),
    "confirmation_decided": ("这笔付款已处理：{result}", "this payment was decided already: {result}"),
    "no_pay_link": ("此订单已没有付款链接", "the order has no pay link any more"),
    "unknown_state": ("订单状态须为以下之一：{states}", "state is one of {states}"),
    "bad_period": (
        "日期须为 YYYY-MM-DD，且 to 不早于 from，最多 92 天",
        "a period of days YYYY-MM-DD, from before to, 92 days at most",
    ),
    "payer_required": (
        "{channel:channel}的此支付方式需要付款人（payer：市民在我方微信应用下的 openid）",
        "this way of paying by {channel} needs the payer (the citizen's openid under our WeChat app)",
    ),
    "channel_refused": (
        "{channel:channel}拒绝了此请求（{channel_code}）",
        "{channel} refused the request ({channel_code})",
    ),
    "channel_trade_paid": (
        "{channel:channel}的交易已支付，不能关闭；支付将按渠道的查询结果入账",
        "{channel}'s trade is paid and cannot be closed; the payment is booked from the channel's answer",
    ),
    "agreement_missing": (
        "市民尚未与{channel:channel}签订免密支付协议",
        "the citizen has no payment agreement with {channel}",
    ),
    "bill_not_ready": (
        "支付渠道尚未生成该日的对账单，请稍后再试",
        "the channel has not published its statement for that day yet; try again later",
    ),
    "bill_invalid": (
        "{channel:channel}的对账单无法使用（格式不符或合计不符）",
        "{channel}'s statement cannot be used (unreadable, or its totals do not add up)",
    ),
    "openid_not_allowed": ("只有小程序才能用 openid 指定市民", "only a mini-app names a citizen by openid"),
    "unknown_openid": ("此小程序下没有这个 openid", "unknown openid for this mini-app"),
    "invalid_date": ("日期格式应为 YYYY-MM-DD", "date must be YYYY-MM-DD"),
    "invalid_url": ("Webhook 地址须为 http(s)", "the webhook URL must be http(s)"),
    # the console
    "read_only": ("你的后台角色为只读", "your console role is read-only"),
    "invalid_role": ("后台角色须为以下之一：{roles}", "role must be one of {roles}"),
    "invalid_username": ("用户名须为 1 至 100 个字符", "a username of 1 to 100 characters is required"),
    "operator_exists": ("后台账号 {username} 已存在", "operator {username!r} exists"),
    "invalid_password": (
        "密码须为 {min_length} 至 {max_length} 个字符，且不能是已加密的密码",
        "the password must be {min_length} to {max_length} characters and not a hashed one",
    ),
    "csrf_failed": ("缺少 CSRF 令牌或令牌不符，请刷新页面", "missing or wrong CSRF token"),
    "console_sign_in": ("请先登录运管后台 /admin/", "sign in to the console at /admin/ first"),
    "scanner_not_found": ("没有此编号的在用扫码设备", "no active scanner with this id"),
    "not_a_citizen_code": ("这不是市民码", "this is not a citizen code"),
    "empty_image": ("请上传图片", "send the image as the request body"),
    "unreadable_image": ("无法读取此图片", "this is not an image that can be read"),
    "image_too_large": ("图片过大（最多 1600 万像素）", "the image is too large (at most 16 megapixels)"),
    "no_qr_code": ("图片中没有找到二维码", "no QR code found in the image"),
    "table_read_only": ("此表在后台只能查看，不能修改", "this table cannot be changed in the console"),
    "credential_not_created_here": (
        "凭证请用表单或 `shengshi scanners|miniapps|merchants add` 登记（密钥只显示一次）",
        "credentials are created with the form or `shengshi scanners|miniapps|merchants add` "
        "(the secret is shown once)",
    ),
    "credential_not_deleted": (
        "凭证只能吊销（设置吊销时间），不能删除：其历史须保留",
        "credentials are revoked (set revoked at), not deleted: their history stays",
    ),
    "invalid_query": ("查询参数无效", "the query is not valid"),
    # the evaluation centre (ratings/, 好差评)
    "rating_service_not_found": ("没有可评价的服务事项 {service}", "no rateable service {service}"),
    "rating_unit_not_found": ("没有评价单位 {unit}", "no such unit"),
    "invalid_unit": ("单位信息无效", "the unit is not valid"),
    "invalid_event_key": ("服务事件标识须为 1 至 160 个字符", "an event's key is 1 to 160 characters"),
    "invalid_event_time": ("服务事件时间不能晚于现在", "a service event cannot be in the future"),
    "rating_event_not_found": ("没有此项服务记录", "no such service event"),
    "not_your_event": ("只有办理此项服务的本人可以评价", "only the citizen who had this service may rate it"),
    "rating_window_closed": ("此项服务的评价期限已过", "the time to rate this service has passed"),
    "invalid_rating_text": (
        "评价内容含有不允许的控制字符",
        "the comment holds characters that are not allowed",
    ),
    "unknown_indicator": (
        "此类服务的评价指标为 {allowed}",
        "this kind of service is rated on {allowed}",
    ),
    "rating_not_found": ("没有找到您的这条评价", "no such rating of yours"),
    "no_case": ("只有差评才有整改回访", "only a bad rating has a case to call back on"),
    "case_state": ("该差评工单{state:case_state}，不能进行此操作", "the case is {state}: not now"),
    "already_appealed": (
        "此差评工单已申诉过一次（{decision:appeal_decision}），请整改或作出解释",
        "this case's appeal was decided already ({decision}): answer it",
    ),
    "event_conflict": ("服务记录暂时无法登记，请重试", "the service event could not be recorded; retry"),
    "rating_case_not_found": ("没有找到此差评工单", "no such case at your units"),
    "invalid_case_text": (
        "工单说明不能为空，也不能含有控制字符或改变文字方向的字符",
        "the text is empty or holds control or direction-changing characters",
    ),
    "invalid_month": ("月份格式应为 YYYY-MM", "a month is YYYY-MM"),
    # e-licences (licences/)
    "unknown_licence_type": ("证照类型须为以下之一：{types}", "type must be one of {types}"),
    "unknown_licence_field": ("此类证照没有字段 {field}", "this licence type has no field {field}"),
    "licence_field_missing": ("缺少证照字段 {field}", "the field {field} is required"),
    "licence_field_invalid": (
        "证照字段 {field} 须为 1 至 512 个可打印字符（日期为 YYYY-MM-DD）",
        "the field {field} must be 1-512 printable characters (a date YYYY-MM-DD)",
    ),
    "invalid_issuer_code": (
        "发证机关代码须为 2 至 32 个小写字母、数字或 -",
        "an issuer code is 2-32 of a-z, 0-9 and -",
    ),
    "unknown_department": ("部门类别须为以下之一：{departments}", "department must be one of {departments}"),
    "type_not_for_department": (
        "{department} 类部门不能签发这些证照类型",
        "a {department} issuer does not issue these licence types",
    ),
    "invalid_issuer_name": (
        "发证机关名称须为 1 至 64 个字（英文名 1 至 96 个字符），不得含控制字符或改变文字方向的字符",
        "an issuer's names are 1-64 (Chinese) and 1-96 (English) characters, none of them control or"
        " direction-changing ones",
    ),
    "issuer_exists": ("发证机关已存在", "the issuer exists"),
    "issuer_revoked": (
        "该证照的发证机关已被撤销，证照不能再出示或授权",
        "the licence's issuer is no longer trusted",
    ),
    "issuer_not_found": ("没有此发证机关，或其凭证已被撤销", "no such issuer, or its credential is revoked"),
    "status_list_busy": ("状态列表暂时繁忙，请重试", "no status list entry could be taken; retry"),
    "status_list_not_found": ("没有此状态列表", "no such status list"),
    "type_not_allowed": ("该发证机关不能签发此类证照", "this issuer may not issue this licence type"),
    "licence_exists": (
        "该证号的证照已存在且内容不同，请改为更新",
        "a licence with this number exists with other details: update it",
    ),
    "licence_not_found": ("没有此证照", "no such licence"),
    "licence_revoked": ("该证照已注销", "the licence is revoked"),
    "licence_suspended": ("该证照已暂停使用", "the licence is suspended"),
    "licence_expired": ("该证照已过有效期", "the licence has expired"),
    "licence_valid": ("该证照有效", "the licence is valid"),
    "licence_state": ("该证照{state:licence_status}，不能进行此操作", "the licence is {state}: not now"),
    "licence_number_fixed": (
        "证号不能更改，请签发新证照",
        "a licence's number does not change: issue a new one",
    ),
    "invalid_time": ("时间须带时区", "the time needs a time zone"),
    "device_withdrawn": ("此设备已被移除，不能再领取该证照", "this device was withdrawn from the licence"),
    "invalid_proof": (
        "设备密钥证明无效：须由请求头中的 P-256 公钥对本服务下发的一次性随机数签名",
        "the proof is not valid: the P-256 key in its header signs a one-time nonce of ours",
    ),
    "presentation_invalid": ("亮证数据校验未通过（{reason}）", "the presentation does not verify ({reason})"),
    "presentation_not_yours": (
        "只能出示本人设备上的本人证照",
        "this presentation is not of your licence on one of your devices",
    ),
    "handover_not_found": (
        "亮证数据已被读取或已过期",
        "no such presentation: it was fetched already or lapsed",
    ),
    "invalid_purpose": (
        "请说明用途（2 至 200 个字，不得含控制字符或改变文字方向的字符）",
        "say what the fields are for, in 2-200 characters, none of them control or direction-changing ones",
    ),
    "invalid_mode": ("授权方式须为一次性或长期", "mode is once or standing"),
    "invalid_consent_days": ("长期授权的期限须为 1 至 365 天", "a standing consent lasts 1-365 days"),
    "invalid_subject": (
        "小程序以 openid、政务服务以身份证号指明办事人",
        "a mini-app names the citizen by openid, a relying party by id_number",
    ),
    "citizen_not_found": ("没有已实名认证的对应用户", "no verified citizen answers to that"),
    "request_conflict": ("授权申请暂时无法登记，请重试", "the request could not be recorded; retry"),
    "request_not_found": ("没有此授权申请", "no such request"),
    "requests_pending": (
        "该用户尚有 {most} 个您的申请未答复，请稍后再申请",
        "this citizen has {most} of your requests unanswered: wait for their answers",
    ),
    "request_decided": (
        "此申请{state:request_state}，不能再作此操作",
        "this request is {state}: not now",
    ),
    "consent_pending": ("持证人尚未授权", "the citizen has not answered yet"),
    "consent_refused": ("持证人已拒绝授权", "the citizen refused"),
    "consent_expired": ("申请或授权已过期", "the request or the consent has lapsed"),
    "consent_used": ("此一次性授权已使用", "this one-time consent was used"),
    "consent_revoked": ("持证人已撤回授权", "the citizen withdrew the consent"),
    "consent_approved": ("已授权", "approved"),
    "no_licence_of_type": ("您没有有效的此类证照", "you hold no valid licence of this type"),
    "licence_not_held": (
        "授权人已不再持有该证照，此授权不再有效",
        "the citizen who consented no longer holds this licence",
    ),
    "wrong_licence_type": ("所选证照不是申请的类型", "that licence is of another type"),
    # the message centre (messages/)
    "invalid_message_data": (
        "消息内容与模板不符：{problems}",
        "the data does not fit the template: {problems}",
    ),
    "template_not_found": ("没有消息模板 {template}", "no message template {template}"),
    "template_not_approved": (
        "消息模板 {template} 尚未经运营人员审核通过，暂不能使用",
        "message template {template} is not approved for use (an operator approves it in the console)",
    ),
    "not_subscribable": (
        "只有提醒类消息可以订阅：交易类消息总会送达，公告可在消息设置中关闭",
        "only reminders are subscribed to: transactional messages always come, announcements are turned"
        " off in the preferences",
    ),
    "invalid_idempotency_key": ("幂等键须为 1 至 160 个字符", "an idempotency key is 1-160 characters"),
    "invalid_schedule": (
        "定时消息须带时区，且最多提前 60 天",
        "a message may be scheduled up to 60 days ahead, with a time zone",
    ),
    "message_rate_limited": (
        "发送提醒过于频繁，请稍后再试",
        "too many reminders this minute; try again shortly",
    ),
    "message_not_found": ("没有这条消息", "no such message"),
    "push_subscription_not_found": ("没有这个推送订阅", "no such push subscription"),
    "push_endpoint_not_allowed": (
        "推送地址不属于允许的推送服务",
        "the push endpoint is not at an allowed push service",
    ),
    "invalid_push_subscription": ("推送订阅的密钥无效", "the push subscription's keys are not valid"),
    "announcement_not_found": ("没有这条公告", "no such announcement"),
    "announcement_not_sending": ("公告当前不在发送中，无法取消", "the announcement is not being sent"),
    "invalid_segment": (
        "发送范围无效：全体；持有某项权益（medical、social_security、health）；某小程序的用户；或沈阳某区县代码",
        "segment: everyone; holders of medical, social_security or health; an enabled mini-app's users; or a"
        " Shenyang district code",
    ),
    "not_an_announcement": ("公告须使用公告类模板", "announcements use announcement templates"),
    "invalid_rate": ("发送速率须为每秒 1 至 100000 条", "rate: 1 to 100000 messages a second"),
    "invalid_district": ("请选择沈阳市的区县", "district must be one of Shenyang's district codes"),
    # 财政非税 (docs/fees.md)
    "invalid_notice_no": (
        "缴款码为以 2101 开头的 20 位数字，末位为校验位，请核对",
        "a payment notice number is 20 digits starting 2101, the last a check digit: check it",
    ),
    "notice_not_found": ("缴款通知不存在", "no such payment notice"),
    "notice_reference_reused": (
        "此业务单号已用于另一笔缴款通知",
        "this reference was used for a different notice",
    ),
    "notice_paid": ("此缴款通知已缴纳", "the notice is paid"),
    "notice_cancelled": ("执收单位已撤销此缴款通知", "the department cancelled this notice"),
    "notice_being_paid": (
        "缴款人正在缴纳此通知，请待本次支付结束后再试",
        "a citizen is paying this notice now; try again when the payment has ended",
    ),
    "notice_payer_required": (
        "请以身份证号（payer_id_number）或手机号（payer_phone）之一指明缴款人",
        "name the payer by payer_id_number or by payer_phone (one of them)",
    ),
    "due_date_passed": ("缴款期限已过", "the due date has passed"),
    "invalid_fiscal_file": ("财政对账文件格式有误", "the fiscal file is not valid"),
    "fiscal_delivery_not_found": (
        "此缴款通知没有发往财政系统的通知（尚未缴纳）",
        "no notification to the fiscal system for this notice (it is not paid)",
    ),
}


class _Formatter(string.Formatter):
    """``str.format_map`` for the catalogue: ``{name:glossary}`` writes a value as its term in
    :data:`TERMS` (in Chinese; English keeps the value), and a list is written item by item."""

    def __init__(self, locale: Locale) -> None:
        self.locale = locale

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, list | tuple):
            sep = ", " if self.locale == "en" else "、"
            return sep.join(self.format_field(item, format_spec) for item in value)
        if format_spec in TERMS:
            text = str(value)
            return text if self.locale == "en" else TERMS[format_spec].get(text, text)
        return str(super().format_field(value, format_spec))


def _fill(template: str, locale: Locale, params: dict[str, Any]) -> str:
    return _Formatter(locale).vformat(template, (), params)


def message(code: str, locale: Locale | None = None, **params: Any) -> str:
    """The catalogue's text for ``code`` in ``locale`` (the request's language when not given)."""
    zh, en = PROBLEMS[code]
    locale = locale or current_locale()
    return _fill(en if locale == "en" else zh, locale, params)


def problem_text(
    status: int,
    code: str,
    title: str,
    detail: str,
    locale: Locale,
    params: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """(title, detail) of a problem in ``locale``; ``title`` and ``detail`` are the English ones."""
    if locale == "en":
        return title, detail
    title_zh = TITLES_ZH.get(status, TITLES_ZH.get(status // 100 * 100, "出错了"))
    entry = PROBLEMS.get(code)
    if entry is None:
        return title_zh, detail
    try:
        return title_zh, _fill(entry[0], locale, params or {})
    except (KeyError, IndexError, ValueError, AttributeError):
        return title_zh, detail
