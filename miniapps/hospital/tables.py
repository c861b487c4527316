"""Hospital's own tables."""

from piccolo.columns import JSON, UUID, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Hospital(Table, tablename="hospital"):
    code = Varchar(length=16, unique=True)  # check-in scanners are enrolled with it as their place
    name = Varchar(length=64)  # Chinese
    name_en = Varchar(length=128, default="")
    region = Varchar(length=6)  # administrative region: insurance covers more for citizens insured here


class Department(Table, tablename="hospital_department"):
    hospital = ForeignKey(references=Hospital, on_delete=OnDelete.cascade)
    code = Varchar(length=16, unique=True)
    name = Varchar(length=64)  # Chinese
    name_en = Varchar(length=128, default="")


class Doctor(Table, tablename="hospital_doctor"):
    department = ForeignKey(references=Department, on_delete=OnDelete.cascade)
    code = Varchar(length=16, unique=True)
    name = Varchar(length=32)  # a person's name, the same in every language
    title = Varchar(length=32, default="")


class Slot(Table, tablename="hospital_slot"):
    id = UUID(primary_key=True)
    doctor = ForeignKey(references=Doctor, on_delete=OnDelete.cascade, index=True)
    starts_at = Timestamptz(index=True)
    capacity = Integer(default=1)
    booked = Integer(default=0)


class Appointment(Table, tablename="hospital_appointment"):
    id = UUID(primary_key=True)
    slot = ForeignKey(references=Slot, on_delete=OnDelete.cascade, index=True)
    openid = Varchar(length=40, index=True)
    state = Varchar(length=12, default="booked")  # booked | cancelled | checked_in
    created_at = Timestamptz(default=TimestamptzNow())


class Visit(Table, tablename="hospital_visit"):
    id = UUID(primary_key=True)
    hospital = ForeignKey(references=Hospital, on_delete=OnDelete.cascade, index=True)
    openid = Varchar(length=40, index=True)
    appointment = ForeignKey(references=Appointment, null=True, default=None)
    walk_in = Varchar(length=1, default="n")  # y: came without an appointment
    insured_region = Varchar(length=6, default="")
    started_at = Timestamptz()
    state = Varchar(length=8, default="open")  # open | billed | paid
    items = JSON(default="[]")
    total = Integer(default=0)
    insured = Integer(default=0)  # paid by medical insurance
    self_paid = Integer(default=0)  # the citizen's share: a deferred order
    order_id = Varchar(length=36, default="")
    billed_at = Timestamptz(null=True, default=None)
    # the hospital's own ratings before the evaluation centre (good | average | bad): moved there at
    # start-up and cleared here (the columns go in a later release)
    rating = Varchar(length=8, default="")
    rating_comment = Varchar(length=200, default="")
    check_in_record = Varchar(length=110, unique=True)
    # the 医保电子凭证 the bill settled against, read with the citizen's standing consent ("": none linked)
    insurance_number = Varchar(length=64, default="")
    insurance_type = Varchar(length=64, default="")


class InsuranceCard(Table, tablename="hospital_insurance_card"):
    """A citizen's 医保电子凭证 (medical insurance card) linked to the hospital: a standing consent to read
    its name, insurance number, type and region, asked through the platform (Platform.ask_licence) and
    read at each bill. One per citizen."""

    id = UUID(primary_key=True)
    openid = Varchar(length=40, unique=True)
    state = Varchar(length=12, default="pending")  # pending | linked | refused | lapsed | withdrawn
    reason = Varchar(length=32, default="")  # why it is not linked (the platform's code), else ""
    request = Varchar(length=36, default="")  # the licence request (Platform.ask_licence)
    # what the card said when last read
    name = Varchar(length=64, default="")
    insurance_number = Varchar(length=64, default="")
    insurance_type = Varchar(length=64, default="")
    region = Varchar(length=64, default="")
    asked_at = Timestamptz()
    linked_at = Timestamptz(null=True, default=None)


TABLES = [Hospital, Department, Doctor, Slot, Appointment, Visit, InsuranceCard]
