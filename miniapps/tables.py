"""Platform tables of the mini-app platform (mini-apps keep their own data in their own tables)."""

from piccolo.columns import JSON, UUID, ForeignKey, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from auth.tables import Citizen


class MiniAppGrant(Table, tablename="miniapp_grant"):
    """A citizen's authorisation of a mini-app for some scopes (one row per citizen and app)."""

    id = UUID(primary_key=True)
    citizen = ForeignKey(references=Citizen, on_delete=OnDelete.cascade, index=True)
    app_id = Varchar(length=32, index=True)
    citizen_app = Varchar(length=80, unique=True)  # "<citizen>/<app>"
    scopes = JSON(default="[]")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)


class PairwiseSubject(Table, tablename="pairwise_subject"):
    """Which citizen a mini-app's openid stands for (the platform's side of the pairwise mapping)."""

    id = UUID(primary_key=True)
    app_openid = Varchar(length=80, unique=True)  # "<app_id>/<openid>"
    citizen_id = Varchar(length=36, index=True)


TABLES = [MiniAppGrant, PairwiseSubject]
