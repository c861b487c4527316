"""Identity tables. Personal data is stored sealed (AES-GCM, key id inside) with HMAC indexes for lookup."""

from piccolo.columns import UUID, ForeignKey, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Citizen(Table, tablename="citizen"):
    id = UUID(primary_key=True)  # opaque; the "sub" of access tokens
    status = Varchar(length=16, default="active", index=True)  # active | blocked | deleted
    phone_index = Varchar(
        length=64, null=True, default=None, unique=True
    )  # HMAC of the E.164 number; NULL once deleted
    phone_sealed = Varchar(length=256, null=True, default=None, secret=True)
    phone_masked = Varchar(length=32, default="")
    name_sealed = Varchar(length=512, null=True, default=None, secret=True)
    id_number_sealed = Varchar(length=256, null=True, default=None, secret=True)
    id_number_index = Varchar(length=64, null=True, default=None, unique=True)  # one account per ID number
    # real-name verification (实名认证): set only when a provider confirmed the name and ID number;
    # entitlements addressed by ID number reach the account only then
    real_name_verified_at = Timestamptz(null=True, default=None)
    real_name_provider = Varchar(length=32, default="")
    real_name_level = Varchar(length=16, default="")  # two_factor | face
    real_name_reference = Varchar(length=64, default="")  # the provider's request id
    # where the citizen lives, as they chose (a Shenyang district's code, e.g. 210102): announcements
    # reach a district's residents by it
    district = Varchar(length=6, default="", index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None)


class Device(Table, tablename="device"):
    id = UUID(primary_key=True)
    citizen = ForeignKey(references=Citizen, on_delete=OnDelete.cascade, index=True)
    device_id = Varchar(length=128)  # the app's own installation id
    name = Varchar(length=128, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)


class RefreshToken(Table, tablename="refresh_token"):
    """One row per refresh token; tokens of one login on one device share a family (its session id)."""

    id = UUID(primary_key=True)
    family = UUID(index=True)
    citizen = ForeignKey(references=Citizen, on_delete=OnDelete.cascade, index=True)
    device = ForeignKey(references=Device, on_delete=OnDelete.cascade, index=True)
    token_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    spent_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class MachineClient(Table, tablename="machine_client"):
    """Credentials of machine callers: scanner terminals, mini-app backends, merchants (HTTP Basic)."""

    id = UUID(primary_key=True)
    kind = Varchar(length=16, index=True)  # scanner | miniapp | merchant
    client_id = Varchar(length=40, unique=True)
    secret_hash = Varchar(length=64, secret=True)  # HMAC-SHA256; the secret is shown once, never stored
    name = Varchar(length=128, default="")
    app_id = Varchar(length=64, default="", index=True)
    place = Varchar(length=128, default="")
    context = Varchar(length=64, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class PairwiseSubject(Table, tablename="pairwise_subject"):
    """Which citizen a mini-app's openid stands for (the platform's side of the pairwise mapping)."""

    id = UUID(primary_key=True)
    app_openid = Varchar(length=80, unique=True)  # "<app_id>/<openid>"
    citizen_id = Varchar(length=36, index=True)


TABLES = [Citizen, Device, RefreshToken, MachineClient, PairwiseSubject]
