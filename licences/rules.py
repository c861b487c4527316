"""The licence types the platform knows, their fields and who may issue them; pure rules on them.

A type's fields are what its paper form shows; every one is a selectively disclosable claim of the
SD-JWT VC. Values are strings (dates as ISO ``YYYY-MM-DD``), as issuers keep them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from backend.errors import InvalidInput


@dataclass(frozen=True)
class Field:
    name: str
    zh: str
    en: str
    required: bool = True
    kind: str = "text"  # text | date | id_number
    personal: bool = False  # masked wherever a list shows it


@dataclass(frozen=True)
class LicenceType:
    code: str
    zh: str
    en: str
    department: str  # the kind of department that issues it
    fields: tuple[Field, ...]
    number_field: str  # the field that numbers the licence (its 证号)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _f(name: str, zh: str, en: str, **kw: Any) -> Field:
    return Field(name, zh, en, **kw)


_NAME = _f("name", "姓名", "Name", personal=True)
_SEX = _f("sex", "性别", "Sex")
_BIRTH = _f("birth_date", "出生日期", "Date of birth", kind="date")
_ADDRESS = _f("address", "住址", "Address", personal=True)
_AUTHORITY = _f("issuing_authority", "发证机关", "Issuing authority")

TYPES: dict[str, LicenceType] = {
    t.code: t
    for t in (
        LicenceType(
            "resident_id",
            "居民身份证",
            "Resident identity card",
            "public_security",
            (
                _NAME,
                _SEX,
                _f("ethnicity", "民族", "Ethnicity"),
                _BIRTH,
                _ADDRESS,
                _f("id_number", "公民身份号码", "ID number", kind="id_number", personal=True),
                _AUTHORITY,
                _f("valid_from", "有效期起", "Valid from", kind="date"),
                _f("valid_until", "有效期至", "Valid until", kind="date", required=False),
            ),
            "id_number",
        ),
        LicenceType(
            "driving_licence",
            "机动车驾驶证",
            "Driving licence",
            "traffic_police",
            (
                _NAME,
                _SEX,
                _f("nationality", "国籍", "Nationality"),
                _BIRTH,
                _ADDRESS,
                _f("licence_number", "证号", "Licence number", kind="id_number", personal=True),
                _f("licence_class", "准驾车型", "Licence class"),
                _f("first_issued", "初次领证日期", "First issued", kind="date"),
                _f("valid_from", "有效期起", "Valid from", kind="date"),
                _f("valid_until", "有效期至", "Valid until", kind="date", required=False),
                _AUTHORITY,
            ),
            "licence_number",
        ),
        LicenceType(
            "vehicle_licence",
            "机动车行驶证",
            "Vehicle licence",
            "traffic_police",
            (
                _f("plate_number", "号牌号码", "Plate number"),
                _f("vehicle_type", "车辆类型", "Vehicle type"),
                _f("owner", "所有人", "Owner", personal=True),
                _f("use_character", "使用性质", "Use"),
                _f("model", "品牌型号", "Make and model"),
                _f("vin", "车辆识别代号", "VIN"),
                _f("engine_number", "发动机号码", "Engine number", required=False),
                _f("registered_on", "注册日期", "Registered", kind="date"),
                _f("issued_on", "发证日期", "Issued", kind="date"),
                _AUTHORITY,
            ),
            "plate_number",
        ),
        LicenceType(
            "business_licence",
            "营业执照",
            "Business licence",
            "market_regulation",
            (
                _f("credit_code", "统一社会信用代码", "Unified social credit code"),
                _f("company_name", "名称", "Company name"),
                _f("company_type", "类型", "Type"),
                _f("legal_representative", "法定代表人", "Legal representative", personal=True),
                _f("registered_capital", "注册资本", "Registered capital", required=False),
                _f("established_on", "成立日期", "Established", kind="date"),
                _f("business_scope", "经营范围", "Business scope", required=False),
                _f("address", "住所", "Address"),
                _AUTHORITY,
            ),
            "credit_code",
        ),
        LicenceType(
            "marriage_certificate",
            "结婚证",
            "Marriage certificate",
            "civil_affairs",
            (
                _f("holder_name", "持证人", "Holder", personal=True),
                _f("registered_on", "登记日期", "Registered", kind="date"),
                _f("certificate_number", "结婚证字号", "Certificate number"),
                _f("spouse_name", "配偶姓名", "Spouse's name", personal=True),
                _f(
                    "spouse_id_number",
                    "配偶身份证件号",
                    "Spouse's ID number",
                    kind="id_number",
                    personal=True,
                ),
                _AUTHORITY,
            ),
            "certificate_number",
        ),
        LicenceType(
            "diploma",
            "毕业证书",
            "Diploma",
            "education",
            (
                _NAME,
                _SEX,
                _BIRTH,
                _f("school", "学校", "School"),
                _f("major", "专业", "Major", required=False),
                _f("level", "层次", "Level"),
                _f("graduated_on", "毕业日期", "Graduated", kind="date"),
                _f("certificate_number", "证书编号", "Certificate number"),
            ),
            "certificate_number",
        ),
        LicenceType(
            "medical_insurance_card",
            "医保电子凭证",
            "Medical insurance card",
            "healthcare_security",
            (
                _NAME,
                _f("id_number", "公民身份号码", "ID number", kind="id_number", personal=True),
                _f("insurance_number", "医保编号", "Insurance number"),
                _f("insurance_type", "参保类型", "Insurance type"),
                _f("region", "参保地", "Insured in"),
                _f("valid_from", "生效日期", "Valid from", kind="date"),
            ),
            "insurance_number",
        ),
    )
}

DEPARTMENTS = {
    "public_security": ("公安局", "Public security bureau"),
    "traffic_police": ("公安交通管理局", "Traffic police"),
    "market_regulation": ("市场监督管理局", "Market regulation"),
    "civil_affairs": ("民政局", "Civil affairs"),
    "education": ("教育局", "Education"),
    "healthcare_security": ("医疗保障局", "Healthcare security"),
}

STATES = ("valid", "suspended", "revoked")
STATUS_VALUES = {"valid": 0, "revoked": 1, "suspended": 2}  # the Token Status List values
_MAX_VALUE = 512


def licence_type(code: str) -> LicenceType:
    found = TYPES.get(code)
    if found is None:
        raise InvalidInput(
            f"type must be one of {sorted(TYPES)}", code="unknown_licence_type", types=sorted(TYPES)
        )
    return found


def clean_fields(kind: LicenceType, raw: dict[str, Any], *, partial: bool = False) -> dict[str, str]:
    """The fields an issuer sent, checked against the type: known names, strings of printable text,
    dates that are dates; every required one present unless ``partial`` (an update)."""
    unknown = sorted(set(raw) - set(kind.names))
    if unknown:
        raise InvalidInput(
            f"{kind.code} has no field {unknown[0]!r}", code="unknown_licence_field", field=unknown[0]
        )
    out: dict[str, str] = {}
    for f in kind.fields:
        if f.name not in raw:
            if f.required and not partial:
                raise InvalidInput(f"{f.name} is required", code="licence_field_missing", field=f.name)
            continue
        value = raw[f.name]
        if value is None and not f.required:
            out[f.name] = ""
            continue
        if not isinstance(value, str):
            raise InvalidInput(f"{f.name} must be text", code="licence_field_invalid", field=f.name)
        text = unicodedata.normalize("NFC", " ".join(value.split()))
        if not text or len(text) > _MAX_VALUE or any(unicodedata.category(c)[0] == "C" for c in text):
            raise InvalidInput(
                f"{f.name} must be 1-512 printable characters", code="licence_field_invalid", field=f.name
            )
        if f.kind == "date":
            try:
                date.fromisoformat(text)
            except ValueError:
                raise InvalidInput(
                    f"{f.name} must be a date YYYY-MM-DD", code="licence_field_invalid", field=f.name
                ) from None
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise InvalidInput(
                    f"{f.name} must be a date YYYY-MM-DD", code="licence_field_invalid", field=f.name
                )
        out[f.name] = text
    return out


def check_fields_requested(kind: LicenceType, fields: list[str]) -> list[str]:
    """Named fields of a type, each once, in the type's order (a request or a presentation's choice)."""
    if not fields:
        raise InvalidInput("name at least one field", code="licence_field_missing", field="fields")
    unknown = [f for f in fields if kind.field(f) is None]
    if unknown:
        raise InvalidInput(
            f"{kind.code} has no field {unknown[0]!r}", code="unknown_licence_field", field=unknown[0]
        )
    wanted = set(fields)
    return [f for f in kind.names if f in wanted]


def mask(field: Field, value: str) -> str:
    """A personal field as a list shows it: the first character (and the last four of a number)."""
    if not field.personal or not value:
        return value
    if field.kind == "id_number" and len(value) > 8:
        return value[:4] + "*" * (len(value) - 8) + value[-4:]
    return value[0] + "*" * (len(value) - 1)


def status_index(counter: int, size: int) -> int:
    """The ``counter``-th licence of a status list gets an index scattered over the list (an odd
    multiplier is a bijection modulo a power of two), so an index does not tell when a licence was issued
    next to which other."""
    assert size & (size - 1) == 0, "a status list's size is a power of two"
    return (counter * 0x9E3779B1 + 0x7F4A7C15) % size
