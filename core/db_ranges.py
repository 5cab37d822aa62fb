"""The integer ranges of the database's columns (PostgreSQL's; SQLite takes any 64-bit integer), for
API fields and parameters whose value reaches a column, a lookup or a LIMIT/OFFSET."""

MAX_SMALLINT = 2**15 - 1
MAX_INT = 2**31 - 1
MAX_BIGINT = 2**63 - 1  # ids (BigAutoField), seeds, LIMIT and OFFSET
MIN_BIGINT = -(2**63)
