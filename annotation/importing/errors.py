"""Import errors that say which file, line (or row) and field went wrong (a record's own problem,
before it is located, is ``taxonomy.datasets.RowError``)."""

from dataclasses import dataclass

from core.errors import ApplicationError


@dataclass(frozen=True)
class Location:
    path: str
    line: int | None = None
    row: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.path}, line {self.line}"
        if self.row is not None:
            return f"{self.path}, row {self.row}"
        return self.path


class ImportDataError(ApplicationError):
    """A located import error: nothing of the file is stored when it is raised."""

    def __init__(self, message: str, location: Location | str, field: str | None = None):
        self.message = message
        self.location = location
        self.field = field
        where = str(location) + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {message}")
