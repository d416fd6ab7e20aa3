"""The money rules in isolation: families from listings, the checks before a create, the wallet's
warnings, the session's warning, the key check. Numbers come from the sheet's examples."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers.vendor import vendor_examples

from gpuoutlet_jupyter.api import (
    Balance,
    InsufficientBalanceError,
    KeyNotOnAccountError,
    Listing,
    Preview,
    RentalRequest,
    Session,
    SpendingCapError,
    SSHKey,
    UnknownFamilyError,
)
from gpuoutlet_jupyter.service.catalog import alternatives, check_family, families_from
from gpuoutlet_jupyter.service.keys import KeyCheck
from gpuoutlet_jupyter.service.money import (
    Spending,
    check_balance,
    check_cap,
    confirmation,
    wallet_json,
)
from gpuoutlet_jupyter.service.record import QuoteInfo
from gpuoutlet_jupyter.service.session import SessionInfo
from gpuoutlet_jupyter.ssh import fingerprint, local_key

SITE = "https://gpuoutlet.ai"
EXAMPLE = vendor_examples()["catalog_listings"]["response"]["listings"][0]


def listing(**fields: Any) -> Listing:
    return Listing.model_validate({**EXAMPLE, **fields})


CATALOG = [
    listing(id="l1", family="rtx-4090", model="RTX_4090", vramGb=24, gpuCount=1, pricePerHourCents=65, providerCode="vast", region="US-East", regionCode="US"),
    listing(id="l2", family="rtx-4090", model="RTX_4090", vramGb=24, gpuCount=1, pricePerHourCents=71, providerCode="runpod", region="EU-West", regionCode="DE"),
    listing(id="l3", family="rtx-4090", model="RTX_4090", vramGb=24, gpuCount=2, pricePerHourCents=125, providerCode="runpod", region="EU-West", regionCode="DE"),
    listing(id="l4", family="h100-80gb", model="H100_SXM_80GB", vramGb=80, gpuCount=8, pricePerHourCents=2001, providerCode="vast", region="US-East", regionCode="US"),
    listing(id="l5", family="h100-80gb", model="H100_SXM_80GB", vramGb=80, gpuCount=1, pricePerHourCents=280, providerCode="vast", region="Asia-NE", regionCode="JP"),
]  # fmt: skip


def test_families_are_derived_from_the_listings() -> None:
    families = {f.id: f for f in families_from(CATALOG)}
    rtx = families["rtx-4090"]
    assert (rtx.vram_gb, rtx.listings, rtx.models) == (24, 3, ("RTX_4090",))
    # Per GPU: 125 for two is 62.5, rounded up, cheaper than the 65 single.
    assert rtx.min_price_per_gpu_hour_cents == 63
    assert rtx.regions == ("US-East", "EU-West") and rtx.region_codes == ("US", "DE")
    assert rtx.providers == ("vast", "runpod")
    assert [(o.gpu_count, o.price_per_hour_cents, o.listings) for o in rtx.offers] == [
        (1, 65, 2),
        (2, 125, 1),
    ]
    h100 = families["h100-80gb"]
    assert h100.min_price_per_gpu_hour_cents == 251  # 2001 / 8, up
    assert [f.id for f in families_from(CATALOG)] == ["rtx-4090", "h100-80gb"]


def test_an_unknown_family_is_refused_with_close_matches() -> None:
    families = families_from(CATALOG)
    assert check_family("rtx-4090", families).id == "rtx-4090"
    with pytest.raises(UnknownFamilyError) as info:
        check_family("rtx4090", families)
    assert info.value.suggestions == ["rtx-4090"]
    assert "Did you mean rtx-4090?" in str(info.value)
    assert "h100-80gb" in str(info.value)


def test_alternatives_when_there_is_no_capacity() -> None:
    families = families_from(CATALOG)
    found = alternatives(families, family_id="rtx-4090", gpu_count=1, region="US")
    assert found == ["rtx-4090 ×1 in EU-West", "rtx-4090 with 2 GPUs", "h100-80gb ×1 from $2.80/h"]
    assert alternatives(families, family_id="b200", gpu_count=8, region=None) == [
        "h100-80gb ×8 from $20.01/h"
    ]


def _quote(cents: int = 280, seconds: float = 45) -> QuoteInfo:
    preview = Preview.model_validate(
        {
            **vendor_examples()["rental_preview"]["response"],
            "pricePerHourCents": cents,
            "estimatedProvisionSeconds": seconds,
        }
    )
    return QuoteInfo.from_preview(preview)


def _balance(**fields: Any) -> Balance:
    return Balance.model_validate({**vendor_examples()["billing_balance"]["response"], **fields})


REQUEST = RentalRequest.build(family_id="h100-80gb", gpu_count=1)


def test_the_balance_check_uses_the_quote() -> None:
    check_balance(_quote(280), _balance(availableCents=280), REQUEST, SITE)
    with pytest.raises(InsufficientBalanceError) as info:
        check_balance(_quote(280), _balance(availableCents=279), REQUEST, SITE)
    error = info.value
    assert (error.needed_cents, error.available_cents, error.status_code) == (280, 279, 403)
    assert "$2.80" in str(error) and "$2.79" in str(error) and SITE in str(error)
    assert "Nothing was sent" in str(error)


def test_the_cap_uses_the_quote_and_fails_closed() -> None:
    check_cap(_quote(280), cap_cents=0, burn_cents_per_hour=10_000, request=REQUEST)
    check_cap(_quote(280), cap_cents=500, burn_cents_per_hour=220, request=REQUEST)
    with pytest.raises(SpendingCapError) as over:
        check_cap(_quote(280), cap_cents=500, burn_cents_per_hour=221, request=REQUEST)
    assert over.value.price_cents_per_hour == 280
    with pytest.raises(SpendingCapError) as closed:
        check_cap(None, cap_cents=500, burn_cents_per_hour=0, request=REQUEST, reason="timeout")
    assert closed.value.price_cents_per_hour is None
    assert "cannot be checked" in str(closed.value) and "timeout" in str(closed.value)
    check_cap(None, cap_cents=0, burn_cents_per_hour=0, request=REQUEST)  # no cap: no check


def test_the_confirmation_line_is_the_quote() -> None:
    line = confirmation(REQUEST, _quote(280, 45), _balance(availableCents=4953))
    assert "1× h100-80gb (ubuntu-24-04) at $2.80/h from vast, US-East" in line
    assert "about 45 s" in line and "$49.53 available" in line


def test_the_wallet_warns_when_it_lasts_under_an_hour() -> None:
    burning = Spending(burn_cents_per_hour=6000, cost_cents=100, active=2)
    data = wallet_json(
        _balance(totalCents=5018, openInvoicesCents=0), burning, cap_cents=0, site=SITE
    )
    assert data["hoursLeft"] == 0.84
    assert [w["code"] for w in data["warnings"]] == ["wallet_under_an_hour"]
    assert (
        "every pod" in data["warnings"][0]["message"]
        and "50 minutes" in data["warnings"][0]["message"]
    )
    calm = Spending(burn_cents_per_hour=65, cost_cents=0, active=1)
    assert (
        wallet_json(_balance(openInvoicesCents=0), calm, cap_cents=0, site=SITE)["warnings"] == []
    )
    idle = Spending(burn_cents_per_hour=0, cost_cents=0, active=0)
    assert (
        wallet_json(_balance(openInvoicesCents=0), idle, cap_cents=0, site=SITE)["hoursLeft"]
        is None
    )


def test_the_wallet_warns_of_open_invoices() -> None:
    idle = Spending(burn_cents_per_hour=0, cost_cents=0, active=0)
    data = wallet_json(_balance(), idle, cap_cents=300, site=SITE)
    assert (data["openInvoicesCents"], data["reservedCents"], data["maxHourlySpendCents"]) == (
        10000,
        65,
        300,
    )
    (warning,) = data["warnings"]
    assert warning["code"] == "open_invoices" and "$100.00" in warning["message"]


def test_the_session_warns_under_three_days() -> None:
    session = Session.model_validate(vendor_examples()["auth_me"]["response"])
    info = SessionInfo(session)
    ends = session.expires_at
    assert info.warning(ends - timedelta(days=3, seconds=1)) is None
    warning = info.warning(ends - timedelta(days=2))
    assert warning is not None and "2.0 days" in warning
    assert "ended" in (info.warning(ends + timedelta(seconds=1)) or "")
    data = info.to_json(ends - timedelta(hours=5))
    assert (data["email"], data["secondsLeft"]) == ("you@example.com", 5 * 3600)
    assert "5 hours" in data["warning"]


def test_the_fingerprint_is_ssh_keygens(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f", str(key)],
        check=True,
    )
    printed = subprocess.run(
        ["ssh-keygen", "-lf", f"{key}.pub"], check=True, capture_output=True, text=True
    )
    local = local_key(key)
    assert local.fingerprint == printed.stdout.split()[1]
    assert (local.algorithm, local.comment) == ("ssh-ed25519", "me@laptop")
    assert fingerprint(local.public_key) == local.fingerprint


def test_the_key_check(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    local = local_key(key)
    other = SSHKey.model_validate(vendor_examples()["ssh_key_list"]["response"]["keys"][0])
    mine = other.model_copy(update={"fingerprint": local.fingerprint, "id": "key_mine"})
    absent = KeyCheck(local, (other,))
    with pytest.raises(KeyNotOnAccountError) as info:
        absent.require()
    assert local.fingerprint in str(info.value) and "%gpu_keys add" in str(info.value)
    present = KeyCheck(local, (other, mine))
    present.require()
    view = present.to_json()
    assert [k["local"] for k in view["keys"]] == [False, True]
    assert view["local"]["onAccount"] is True
    KeyCheck(None, (), "SSH entries are turned off").require()  # nothing to check


def test_session_expiry_is_read_in_utc() -> None:
    session = Session.model_validate(vendor_examples()["auth_me"]["response"])
    assert session.expires_at == datetime(2026, 7, 7, 8, 14, 22, tzinfo=timezone.utc)
