"""财政非税: non-tax fees. Departments (执收单位) issue payment notices (缴款码), citizens pay them through
the payment centre, the fiscal system is told of each payment and reconciled day by day."""
