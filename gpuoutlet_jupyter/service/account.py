"""Whose rentals a state dir tracks: the account last signed in there, and its rentals that may
still cost money, so a sign-in as another account never leaves them unwatched unawares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..ssh.fsutil import atomic_write
from .store import StateStore

#: Next to the rentals file: the user id and email of the session last used there.
ACCOUNT_FILE = "account.json"


@dataclass(frozen=True)
class Account:
    """A gpuoutlet user (no secret: the session itself is never kept here)."""

    user_id: str
    email: str

    def same_as(self, email: str) -> bool:
        """gpuoutlet merges accounts on the email, whatever its case."""
        return self.email.strip().lower() == email.strip().lower()


class AccountNote:
    """``<state_dir>/account.json``: who the tracked rentals belong to."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / ACCOUNT_FILE

    def read(self) -> Account | None:
        """The account noted last (None: none yet, or a file that cannot be read)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        user_id, email = data.get("userId"), data.get("email")
        if not isinstance(user_id, str) or not isinstance(email, str) or not email:
            return None
        return Account(user_id, email)

    def write(self, account: Account) -> None:
        """Note the account (0600, atomic); only when it changed."""
        if self.read() == account:
            return
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        body = json.dumps({"userId": account.user_id, "email": account.email}) + "\n"
        atomic_write(self.path, body.encode("utf-8"))


def rentals_on_file(state_dir: Path) -> list[str]:
    """Ids of the rentals the state file holds that may still cost money (not final, not gone)."""
    store = StateStore(state_dir)
    if not store.path.exists():
        return []
    return [record.id for record in store.load().records if record.watched]
