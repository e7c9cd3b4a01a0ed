"""Services: validate, apply and commit changes; views stay thin. No Flask request objects here."""

from __future__ import annotations


class ServiceError(Exception):
    """A change that cannot be made; `messages` are French sentences for the person."""

    def __init__(self, *messages: object) -> None:
        super().__init__(*messages)
        self.messages = [str(m) for m in messages]

    def __str__(self) -> str:
        return " ".join(self.messages)
