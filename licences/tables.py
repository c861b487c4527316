"""What the e-licence centre keeps: issuers, licences (their fields sealed), the status lists their
entries live in, the device keys credentials were bound to, consent requests and the use log."""

from piccolo.columns import JSON, UUID, Integer, Serial, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class LicenceIssuer(Table, tablename="licence_issuer"):
    """A department that issues licences: a machine principal (credential kind ``issuer``) with a signing
    key of its own, published in the issuer trust list while it is active."""

    code = Varchar(length=32, unique=True)  # e.g. "sy-traffic"; its keys: purpose "lic:" + sha256(code)[:12]
    name_zh = Varchar(length=64)
    name_en = Varchar(length=96)
    department = Varchar(length=32)  # rules.DEPARTMENTS
    types = JSON(default="[]")  # the licence types it may issue
    client_id = Varchar(length=40, default="", index=True)  # its machine credential
    status = Varchar(length=12, default="active")  # active | revoked (gone from the trust list)
    created_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)


class LicenceStatusList(Table, tablename="licence_status_list"):
    """One Token Status List of an issuer: ``used`` entries of ``size`` handed out (a conditional UPDATE
    takes the next), each licence's index scattered over the list (rules.status_index)."""

    id = Serial(primary_key=True)
    issuer = Varchar(length=32)
    number = Integer()  # 1, 2, ... per issuer (unique with issuer, by the migration)
    size = Integer()
    bits = Integer(default=2)
    used = Integer(default=0)
    changed_at = Timestamptz(default=TimestamptzNow())  # the last status change: the token's version


class Licence(Table, tablename="licence"):
    id = UUID(primary_key=True)
    issuer = Varchar(length=32)  # leads the unique (issuer, type, number_index) index
    type = Varchar(length=32)
    number_index = Varchar(length=64)  # HMAC of the licence's number: one licence per (issuer, type, number)
    holder_index = Varchar(length=64, index=True)  # HMAC of the holder's ID number (auth's id_number_index)
    fields_sealed = Varchar(length=8192, secret=True)  # the fields, JSON, AES-GCM under the PII keyring
    summary = JSON(default="{}")  # what a list shows: the number and personal fields masked
    status = Varchar(length=12, default="valid")  # valid | suspended | revoked
    reason = Varchar(length=200, default="")  # the issuer's reason for the last status change
    version = Integer(default=1)  # +1 on each update: a credential names the version it was minted from
    status_list = Integer()  # LicenceStatusList.id
    status_idx = Integer()
    valid_until = Timestamptz(null=True, default=None)
    issued_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class LicenceCredential(Table, tablename="licence_credential"):
    """A credential minted for one of the citizen's devices: its key's thumbprint (so the citizen sees
    and can withdraw the devices holding a licence), never the credential itself."""

    id = UUID(primary_key=True)
    licence = UUID(index=True)
    citizen_id = Varchar(length=36, index=True)
    device_jkt = Varchar(length=64)
    version = Integer()
    minted_at = Timestamptz()
    expires_at = Timestamptz()
    withdrawn_at = Timestamptz(null=True, default=None)


class LicenceRequest(Table, tablename="licence_request"):
    """A request for named fields of a licence type, with a purpose, by a mini-app or a relying party,
    and the citizen's answer: pending → approved | refused | expired; approved → used (once) | revoked."""

    id = UUID(primary_key=True)
    citizen_id = Varchar(length=36, index=True)
    requester_kind = Varchar(length=16)  # miniapp | relying_party
    requester_id = Varchar(length=64, index=True)  # the app id or the credential's client id
    requester_name = Varchar(length=96)
    type = Varchar(length=32)
    fields = JSON(default="[]")
    purpose = Varchar(length=200)
    mode = Varchar(length=10)  # once | standing
    state = Varchar(length=10, default="pending")
    licence = UUID(null=True, default=None)  # the licence the citizen chose when approving
    idempotency = Varchar(length=120, null=True, default=None, unique=True)
    created_at = Timestamptz()
    expires_at = Timestamptz()  # a pending request lapses then
    decided_at = Timestamptz(null=True, default=None)
    consent_until = Timestamptz(null=True, default=None)  # a standing consent ends then
    used_at = Timestamptz(null=True, default=None)


class LicenceUse(Table, tablename="licence_use"):
    """One use of a licence: who saw which fields, when and for what. The citizen's own log."""

    id = UUID(primary_key=True)
    citizen_id = Varchar(length=36)  # indexed with at by the migration
    licence = UUID(null=True, default=None)
    type = Varchar(length=32)
    kind = Varchar(length=16)  # shown (亮证) | handover (fetched by an inspector) | shared (授权) | refused
    by_kind = Varchar(length=16)  # self | inspector | miniapp | relying_party
    by_id = Varchar(length=64, default="")
    by_name = Varchar(length=96, default="")
    fields = JSON(default="[]")
    purpose = Varchar(length=200, default="")
    request = UUID(null=True, default=None)
    at = Timestamptz()


TABLES = [LicenceIssuer, LicenceStatusList, Licence, LicenceCredential, LicenceRequest, LicenceUse]
