"""Services: validate, apply and commit changes; views stay thin. No Flask request objects here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class ServiceError(Exception):
    """A change that cannot be made; `messages` are French sentences for the person. `fields`
    names the form field each of some messages is about (a page shows them beside the field)."""

    def __init__(self, *messages: object, fields: Mapping[str, Sequence[object]] | None = None) -> None:
        every = [*messages, *(m for said in (fields or {}).values() for m in said)]
        super().__init__(*every)
        self.messages = [str(m) for m in every]
        self.fields = {name: [str(m) for m in said] for name, said in (fields or {}).items() if said}

    def __str__(self) -> str:
        return " ".join(self.messages)


class ChangedMeanwhile(ServiceError):
    """Someone else changed the same thing between the caller's read and its write (another tab,
    a colleague, a retried request): nothing was written."""


class AlreadyDone(Exception):  # noqa: N818 - not an error: what was asked exists
    """The same thing was written by the same person moments ago (`row_id`): a double tap, a
    reload, a retried call. Nothing new was written."""

    def __init__(self, row_id: int) -> None:
        super().__init__(row_id)
        self.row_id = row_id


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run such a cell as a formula


def spreadsheet_cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (a quote before it; the import drops it)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def tidy(text: str) -> str:
    """A typed text as stored: lines end with "\n" (a browser's textarea sends "\r\n"), no spaces
    around. An edit of a need that only touched "Quand" must not read as a new description (that
    withdraws the approvals not answered yet)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()
