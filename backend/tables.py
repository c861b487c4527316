"""Platform-level tables."""

from piccolo.columns import JSON, UUID, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table


class AuditEvent(Table, tablename="audit_event"):
    """A security-relevant event. Holds no secret and no unmasked personal data."""

    id = UUID(primary_key=True)
    at = Timestamptz(default=TimestamptzNow(), index=True)
    action = Varchar(length=64, index=True, index_method=IndexMethod.btree)
    actor_kind = Varchar(length=16)  # citizen | scanner | merchant | miniapp | operator | system
    actor_id = Varchar(length=64, default="")
    subject = Varchar(length=128, default="")
    ip = Varchar(length=64, default="")
    request_id = Varchar(length=64, default="")
    data = JSON(default="{}")


class SigningKey(Table, tablename="signing_key"):
    """An asymmetric signing key. The private half is sealed with the key-encryption key (AES-GCM, the
    kid as associated data); the public half is published (JWKS, trust list) while it can still verify."""

    id = UUID(primary_key=True)
    purpose = Varchar(length=16, index=True)  # access | code | trust-root
    kid = Varchar(length=32, unique=True)
    alg = Varchar(length=8)  # ES256 | EdDSA
    private_sealed = Varchar(length=512, secret=True)
    public_jwk = JSON()
    created_at = Timestamptz(default=TimestamptzNow())  # added, and published from then on
    # When it starts signing (null: at created_at). A new citizen-code key is published a while before
    # it signs, so every offline scanner's trust list holds it by then (backend/keystore.py).
    active_from = Timestamptz(null=True, default=None)
    # When a newer key takes over signing; the public key stays published until ``publish_until``.
    retired_at = Timestamptz(null=True, default=None)
    publish_until = Timestamptz(null=True, default=None)


TABLES = [AuditEvent, SigningKey]
