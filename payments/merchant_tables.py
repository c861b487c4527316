"""Tables of the citizen code as a pay code (付款码): the citizen's choice, their payment agreements with
the channels, and each payment taken at a merchant's till. Money is integer fen; times are UTC."""

from piccolo.columns import UUID, Boolean, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from payments.tables import PaymentOrder


class PayCodeSetting(Table, tablename="paycode_setting"):
    """What a citizen's code pays with at a till: off until the citizen turns it on."""

    citizen_id = Varchar(length=36, primary_key=True)
    enabled = Boolean(default=False)
    method = Varchar(length=16, default="")  # "credit" or a channel with deferred_charge (sandbox, alipay)
    limit = Integer(default=20000)  # fen per payment above which the citizen confirms in the app
    updated_at = Timestamptz(default=TimestamptzNow())


class PaymentAgreement(Table, tablename="payment_agreement"):
    """A citizen's payment agreement (代扣协议) with a channel: what an agreement charge names."""

    id = UUID(primary_key=True)
    citizen_channel = Varchar(length=60, unique=True)  # "<citizen>/<channel>": one per citizen and channel
    citizen_id = Varchar(length=36, index=True)
    channel = Varchar(length=16)
    agreement_no = Varchar(length=64, default="")  # the channel's id of the agreement (Alipay's agreement_no)
    state = Varchar(length=16, default="signed")  # signed | ended
    signed_by = Varchar(length=64, default="")  # "sandbox" (signed at once), "operator:<name>", "channel"
    signed_at = Timestamptz(default=TimestamptzNow())
    ended_at = Timestamptz(null=True, default=None)


class PayCodePayment(Table, tablename="paycode_payment"):
    """One payment taken by scanning a citizen code at a merchant's till; its id is the confirmation's."""

    id = UUID(primary_key=True)
    order = ForeignKey(references=PaymentOrder, on_delete=OnDelete.restrict, unique=True)
    merchant = Varchar(length=64, index=True)  # the order's owner, "merchant:<client id>"
    till = Varchar(length=40)  # the till's client id
    citizen_id = Varchar(length=36, index=True)
    code_key = Varchar(length=80, unique=True)  # "pay/<the code's id>": a code pays once, anywhere
    method = Varchar(length=16)  # credit | <channel>
    # confirm (waiting for the citizen) -> charging -> paid | deferred (on credit);
    # confirm -> declined | expired; charging -> failed (the channel refused)
    state = Varchar(length=16, index=True)
    reason = Varchar(length=64, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    confirm_by = Timestamptz(null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)


TABLES = [PayCodeSetting, PaymentAgreement, PayCodePayment]
