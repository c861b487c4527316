"""The platform's statement CSV (``shengshi payments reconcile --statement``): a file that is not one is a
StatementError (the command's usage error), never another exception."""

import pytest

from payments.reconciliation import FIELDS, StatementError, read_statement


@pytest.mark.parametrize(
    "line",
    [
        'x,"' + "1" * 200_000 + '",payment,100',  # a field past the csv module's limit
        "x,o,payment,１００",  # full-width digits are no amount
        "x,o,payment,1_000",
    ],
    ids=["huge-field", "full-width", "underscore"],
)
def test_a_statement_that_is_not_one_is_a_statement_error(line):
    header = ",".join(FIELDS)
    with pytest.raises(StatementError):
        read_statement(f"{header}\n{line}\n")
