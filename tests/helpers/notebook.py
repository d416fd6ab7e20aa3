"""The notebook layer's side of the REST API, scripted: complete replies in its shapes (each
checked against its model) and a backend that answers from a script."""

from __future__ import annotations

import difflib
import socket
from typing import Any

from gpuoutlet_jupyter import api
from gpuoutlet_jupyter.api.models import STOP_NOTICE
from gpuoutlet_jupyter.notebook.connect import BackendConfig
from gpuoutlet_jupyter.notebook.session import NotebookSession
from gpuoutlet_jupyter.rest import models
from gpuoutlet_jupyter.rest.models import RentalView


def rental_json(**fields: Any) -> dict[str, Any]:
    """A complete rental reply of the REST API (checked against its model, ``RentalView``)."""
    base: dict[str, Any] = {
        "id": "rent_01TESTTESTTESTTESTTESTTEST",
        "name": "unit",
        "status": "provisioning",
        "familyId": "rtx-4090",
        "gpuCount": 1,
        "pricePerHourCents": 65,
        "host": None,
        "port": None,
        "region": None,
        "provider": None,
        "startedAt": "2026-06-07T08:14:22Z",
        "stoppedAt": None,
        "totalChargedCents": 0,
        "error": None,
        "templateId": "ubuntu-24-04",
        "version": 3,
        "phase": "Provisioning: about 30 s left of the ~45 s gpuoutlet expects.",
        "polls": 2,
        "upstreamError": None,
        "gone": False,
        "createdHere": True,
        "ssh": None,
        "kernel": None,
        "costCents": 0,
        "quote": {
            "pricePerHourCents": 65,
            "estimatedProvisionSeconds": 45,
            "providerCode": "vast",
            "region": "US-East",
            "model": "RTX_4090",
            "listingId": "lst_1",
        },
        "provisioning": {"expectedSeconds": 45, "elapsedSeconds": 15},
        "stop": None,
        "idleStop": None,
        "stopReason": None,
        "endedAt": None,
    }
    base.update(fields)
    if base["status"] != "provisioning" and "provisioning" not in fields:
        base["provisioning"] = None
    return RentalView.model_validate(base).to_json()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


ID = "rent_01TESTTESTTESTTESTTESTTEST"
#: ``GET families`` as the server answers it (FamiliesView).
FAMILIES = [
    {
        "id": "rtx-4090",
        "models": ["RTX_4090"],
        "vramGb": 24,
        "minPricePerGpuHourCents": 65,
        "regions": ["US-East"],
        "regionCodes": ["US"],
        "providers": ["vast"],
        "offers": [
            {"gpuCount": 1, "pricePerHourCents": 65, "listings": 2, "regions": ["US-East"], "providers": ["vast"]}
        ],
        "listings": 2,
    },
    {
        "id": "h100-80gb",
        "models": ["H100_SXM_80GB"],
        "vramGb": 80,
        "minPricePerGpuHourCents": 280,
        "regions": ["EU-North"],
        "regionCodes": ["FI"],
        "providers": ["runpod"],
        "offers": [
            {"gpuCount": 1, "pricePerHourCents": 280, "listings": 1, "regions": ["EU-North"], "providers": ["runpod"]}
        ],
        "listings": 1,
    },
]  # fmt: skip
WALLET = {
    "availableCents": 1234,
    "reservedCents": 65,
    "totalCents": 1299,
    "openInvoicesCents": 0,
    "openInvoiceCount": 0,
    "updatedAt": "2026-06-07T08:15:22Z",
    "burnCentsPerHour": 0,
    "hoursLeft": None,
    "costCents": 0,
    "activeRentals": 0,
    "maxHourlySpendCents": None,
    "warnings": [],
}
SITE = "https://gpuoutlet.example"


class FakeBackend:
    """Answers from a script, in the REST API's shapes (each checked against its model):
    ``states`` are what successive long-polls of a rental return (an exception in it is raised
    instead). What the server checks before a create (the family) it checks too."""

    kind = "server"
    where = "a fake server"
    api_url = SITE

    def __init__(self) -> None:
        self.states: list[Any] = []
        self.create_error: Exception | None = None
        self.created: list[dict[str, Any]] = []
        self.stopped: list[str] = []
        self.listed: list[dict[str, Any]] = []
        self.wallet_reply: dict[str, Any] = dict(WALLET)
        self.keys_reply: dict[str, Any] = {"keys": [], "local": None, "localProblem": None}
        self.added: list[str | None] = []
        self.already_stopped = False
        self.kept: list[tuple[str, float | None]] = []
        #: The ``idleStop`` of a kept rental (None: it has no idle stop).
        self.idle_reply: dict[str, Any] | None = None
        self.closed = False

    def status(self) -> dict[str, Any]:
        return {
            "configured": True,
            "apiUrl": self.api_url,
            "sidSource": "a test",
            "version": "0",
            "session": {
                "userId": "usr_1",
                "email": "you@example.com",
                "expiresAt": "2026-07-07T08:14:22Z",
                "secondsLeft": 2 * 86400,
                "warning": "Your gpuoutlet session ends in about 2.0 days (2026-07-07 08:14 UTC).",
            },
        }

    def templates(self) -> dict[str, Any]:
        from gpuoutlet_jupyter.rest.layer import templates_reply

        return templates_reply()

    def families(self) -> dict[str, Any]:
        return models.FamiliesView.model_validate({"families": FAMILIES}).to_json()

    def wallet(self) -> dict[str, Any]:
        return models.WalletView.model_validate(self.wallet_reply).to_json()

    def keys(self) -> dict[str, Any]:
        return models.KeysView.model_validate(self.keys_reply).to_json()

    def add_key(self, name: str | None = None) -> dict[str, Any]:
        self.added.append(name)
        key = {
            "id": "key_1",
            "name": name or "me@laptop",
            "fingerprint": "SHA256:mine",
            "algorithm": "ssh-ed25519",
            "createdAt": None,
            "local": True,
        }
        self.keys_reply = {
            **self.keys_reply,
            "keys": [key],
            "local": {**(self.keys_reply["local"] or {}), "onAccount": True},
        }
        return models.AddKeyReply.model_validate(
            {
                "key": key,
                "alreadyOnAccount": False,
                "note": "Added. Pods created from now on let this key in.",
            }
        ).to_json()

    def rentals(self, *, since: int | None = None, wait: float | None = None) -> dict[str, Any]:
        return {"rentals": self.listed, "version": 1}

    def rental(
        self, rental_id: str, *, since: int | None = None, wait: float | None = None
    ) -> dict[str, Any]:
        api.contract.check_rental_id(rental_id)
        if since is None:
            return rental_json(id=rental_id)
        state = self.states.pop(0)
        if isinstance(state, BaseException):
            raise state
        return dict(state)

    def preview(self, body: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("the magics create through the service's own checks")

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = [f["id"] for f in FAMILIES]
        if body["familyId"] not in ids:
            close = difflib.get_close_matches(body["familyId"], ids, n=3, cutoff=0.5)
            raise api.UnknownFamilyError(body["familyId"], known=ids, suggestions=close)
        if self.create_error is not None:
            raise self.create_error
        self.created.append(body)
        return rental_json(
            version=1, polls=0, name=body.get("name"), templateId=body.get("templateId")
        )

    def stop(self, rental_id: str) -> dict[str, Any]:
        self.stopped.append(rental_id)
        stop = {
            "finalChargedCents": 47,
            "refundedCents": 0,
            "requestedAt": "2026-06-07T09:00:00Z",
            "alreadyStopped": False,
        }
        status = "stopped" if self.already_stopped else "stopping"
        reply = rental_json(
            id=rental_id, status=status, version=10, stop=stop, costCents=47, totalChargedCents=47
        )
        return models.StopReply.model_validate(
            {**reply, "notice": STOP_NOTICE, "alreadyStopped": self.already_stopped}
        ).to_json()

    def keep(self, rental_id: str, *, idle_stop_minutes: float | None = None) -> dict[str, Any]:
        """The rental as the server answers a keep: with ``idle_reply`` as its idle stop."""
        self.kept.append((rental_id, idle_stop_minutes))
        return rental_json(**{**RUNNING_FIELDS, "id": rental_id, "idleStop": self.idle_reply})

    async def arentals(self, *, since: int, wait: float) -> dict[str, Any]:
        return self.rentals()

    async def awallet(self) -> dict[str, Any]:
        return self.wallet()

    def close(self) -> None:
        self.closed = True


RUNNING_FIELDS: dict[str, Any] = {
    "status": "running",
    "host": "10.1.2.3",
    "port": 2222,
    "version": 6,
    "polls": 3,
    "phase": "Running: connect with `ssh gpuoutlet-x`.",
    "ssh": {"alias": f"gpuoutlet-{ID}", "command": f"ssh gpuoutlet-{ID}"},
    "kernel": f"gpuoutlet-{ID.lower()}",
}
RUNNING = rental_json(**RUNNING_FIELDS)


class ScriptedSession(NotebookSession):
    """A session with the default settings whose backend is ``backend`` (no server, no API)."""

    def __init__(self, backend: Any, **traits: Any) -> None:
        super().__init__(**traits)
        self.scripted = backend

    def open_backend(self, config: BackendConfig) -> Any:
        return self.scripted
