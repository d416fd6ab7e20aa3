"""The extension's REST contract: every reply of ``{base_url}gpuoutlet/api/`` as a pydantic model.

One place for the shapes the sidebar, the magics and the panel read. The JSON layer (layer.py)
validates every reply against these models before it leaves, so a reply never drifts from its
schema; ``python -m gpuoutlet_jupyter.rest.schema`` writes their JSON Schema (the sidebar's
TypeScript types are generated from it) and the tables of ``docs/rest-api.md``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class RestModel(BaseModel):
    """camelCase on the wire; a reply with a member the model does not name is a bug (forbid)."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(alias=to_camel),
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


# Small parts.


class Notice(RestModel):
    """A warning, or a reason a create would be refused: a stable code and a sentence."""

    code: str = Field(
        description="`wallet_under_an_hour`, `open_invoices`, `insufficient_balance`, "
        "`spending_cap`, `key_not_on_account`, ..."
    )
    message: str = Field(description="What it is, in words, with what to do.")


class FieldProblem(RestModel):
    """One member of a request and what is wrong with it."""

    field: str = Field(description="The member as the request names it (`gpuCount`).")
    problem: str = Field(description="What is wrong and what to do.")


# Errors.


class ErrorBody(RestModel):
    """The ``error`` member of every error reply."""

    code: str = Field(
        description="Ours (`validation_error`, `spending_cap`, `key_not_on_account`, "
        "`unknown_family`, `not_configured`, `upstream_unreachable`, ...) or the API's own "
        "(`insufficient_balance`, `model_unavailable`, `rate_limited`, ...)."
    )
    message: str = Field(description="What went wrong and what to do, in words.")
    problems: list[FieldProblem] | None = Field(
        None,
        description="`validation_error` (ours) and `validation_failed` (the API's): every "
        "field and its problem.",
    )
    upstream_code: str | None = Field(None, description="The rentals API's own error code.")
    upstream_message: str | None = Field(None, description="The rentals API's own message.")
    upstream_status: int | None = Field(None, description="The rentals API's HTTP status.")
    api_url: str | None = Field(None, description="The rentals API the server talks to.")
    retry_after_seconds: int | None = Field(None, description="429: when to try again.")
    needed_cents: int | None = Field(None, description="`insufficient_balance`: one hour.")
    available_cents: int | None = Field(None, description="`insufficient_balance`: the wallet.")
    cap_cents_per_hour: int | None = Field(None, description="`spending_cap`: the cap.")
    burn_cents_per_hour: int | None = Field(None, description="`spending_cap`: active rentals.")
    price_cents_per_hour: int | None = Field(
        None, description="`spending_cap`: the quote (null: no quote, the cap failed closed)."
    )
    rental_id: str | None = Field(
        None, description="`not_active`, `pod_not_reachable`: the rental."
    )
    rentals: list[str] | None = Field(
        None, description="`other_account_active`: the rentals that may still be billed."
    )
    state: str | None = Field(None, description="`not_active`: its state.")
    fingerprint: str | None = Field(None, description="`key_not_on_account`: the local key's.")
    family_id: str | None = Field(None, description="`unknown_family`: the id asked for.")
    suggestions: list[str] | None = Field(None, description="`unknown_family`: close ids.")
    alternatives: list[str] | None = Field(
        None, description="`model_unavailable`: what has capacity now."
    )
    create_id: str | None = Field(
        None,
        description="`not_created`, `create_unknown`, `create_ambiguous`: the create whose "
        "answer was lost.",
    )
    candidates: list[str] | None = Field(
        None,
        description="`create_ambiguous`: the rentals that match it (keep one or more with "
        "`POST creates/{createId}`).",
    )
    details: dict[str, Any] | None = Field(None, description="The rentals API's `details`.")


class ErrorReply(RestModel):
    """Every error answer: ``{"error": {...}}`` with an HTTP status of 4xx or 5xx."""

    error: ErrorBody


# Rentals.


class SSHView(RestModel):
    """The SSH step's outcome."""

    alias: str | None = Field(None, description="`gpuoutlet-<id>`.")
    command: str | None = Field(None, description="What to type: `ssh gpuoutlet-<id>`.")
    config_file: str | None = Field(None, description="The ssh config the alias is in.")
    error: str | None = Field(None, description="Why no entry was written.")
    include_warning: str | None = Field(
        None, description="The Include line could not be added: where to add it."
    )


class QuoteView(RestModel):
    """gpuoutlet's quote (``rentals/preview``) a rental was created on."""

    price_per_hour_cents: int = Field(description="The whole hourly price (all GPUs).")
    estimated_provision_seconds: float = Field(description="gpuoutlet's estimate to running.")
    provider_code: str | None = None
    region: str | None = None
    model: str | None = None
    listing_id: str | None = None


class ProvisioningView(RestModel):
    """How far along provisioning is, in time: the bar moves with ``elapsedSeconds``."""

    expected_seconds: float | None = Field(
        description="gpuoutlet's estimate (null: a rental made elsewhere, no quote)."
    )
    elapsed_seconds: float = Field(description="Since the create, when the reply was made.")


class StopView(RestModel):
    """The API's answer to this server's stop."""

    final_charged_cents: int = Field(description="What the rental cost in all.")
    refunded_cents: int = Field(description="Refunded (it ran under 60 s).")
    requested_at: str | None = Field(description="When the stop was asked for (ISO 8601).")
    already_stopped: bool = Field(
        description="gpuoutlet said it was stopped already when this server first stopped it "
        "(stopped elsewhere): nothing was settled by this server."
    )


class IdleStopView(RestModel):
    """A rental's idle auto-stop; the timer members are null until it runs."""

    minutes: float
    warn_minutes: float
    last_active_at: str | None
    stop_at: str | None
    seconds_left: float | None = Field(description="Computed when the reply is made.")
    warning: bool = Field(description="Show the idle warning with a “Keep it” button.")
    decided_here: bool = Field(
        description="This server decides the idle stop (another server owns it otherwise)."
    )
    kernels: int
    busy_kernels: int
    gpu_util: float | None = Field(
        None,
        description="GPU-aware idle stop: utilisation (percent) that counts as activity "
        "(null: the GPUs do not count).",
    )
    gpu_peak: float | None = Field(
        None, description="The highest GPU utilisation the idle stop saw at its last look."
    )
    gpu_problem: str | None = Field(
        None, description="Why the idle stop could not see the GPUs (only the kernels count)."
    )


class SaveView(RestModel):
    """One save of a rental's work: what, to where, when, and what it did not copy."""

    reason: str = Field(
        description="`user` (a stop you asked for), `idle`, `cap`, `manual` (Save now), "
        "`auto_stop` (ahead of autoStopAfterHours), `wallet` (ahead of the wallet at $0)."
    )
    paths: list[str] = Field(description="The pod's folders saved.")
    local_dir: str = Field(description="Where they went on this machine (one subfolder each).")
    started_at: str | None
    finished_at: str | None
    files: int = Field(description="Files copied by this save.")
    bytes: int = Field(description="Bytes copied by this save.")
    complete: bool = Field(description="Everything in the save paths is saved.")
    left_out_files: int = Field(description="Left out over `maxSaveBytes`.")
    left_out_bytes: int
    timed_out: bool = Field(description="It ran out of `saveTimeoutSeconds`.")
    missing: list[str] = Field(description="Save paths the pod does not have.")
    error: str | None = Field(description="Why it failed (the stop went ahead).")
    summary: str = Field(description="What it did, in words.")


class TransferView(RestModel):
    """A transfer between this machine and a rental's pod: running, or the last one."""

    id: str
    kind: str = Field(description="`upload`, `download`, `save` or `workdir`.")
    state: str = Field(description="`running`, `done`, `failed` or `cancelled`.")
    local_dir: str
    remote_dirs: list[str]
    started_at: str | None
    finished_at: str | None
    elapsed_seconds: float
    bytes_done: int
    bytes_total: int = Field(description="Of the folder(s) planned so far.")
    files_done: int
    files_total: int
    rate: float = Field(description="Bytes per second over the last few seconds.")
    current: str | None = Field(description="The file or folder moving now.")
    method: str | None = Field(description="`rsync` or `tar` (the pod has no rsync).")
    wire_bytes: int | None = Field(
        description="Bytes sent over ssh: fewer than the files' when a cut transfer resumed."
    )
    summary: str | None
    error: str | None


class WorkdirView(RestModel):
    """The working folder pushed and set up before the rental's kernel is offered."""

    local_dir: str | None
    remote_dir: str
    setup: str | None = Field(description="The setup command, run once.")
    state: str = Field(description="`pending`, `syncing`, `setup`, `done` or `failed`.")
    output: list[str] = Field(description="The setup command's last lines of output.")
    exit_status: int | None
    error: str | None


class RentalView(RestModel):
    """One rental: the rentals API's fields as it last sent them, and what this server knows."""

    # The rentals API's fields (sheet 2.2).
    id: str
    name: str | None
    status: str = Field(description="`provisioning`, `running`, `stopping`, `stopped`, `failed`.")
    family_id: str | None
    gpu_count: int | None
    price_per_hour_cents: int = Field(description="Locked at creation.")
    host: str | None
    port: int | None
    region: str | None
    provider: str | None
    started_at: str
    stopped_at: str | None
    total_charged_cents: int | None = Field(description="The API's live cost (null: not sent).")
    error: str | None = Field(description="The provider's error when it failed.")
    # This server's.
    template_id: str | None = Field(description="The template it was created with (ours).")
    version: int = Field(description="Grows with every change a viewer could see.")
    phase: str = Field(description="What is happening, in words, and what to do.")
    polls: int
    upstream_error: str | None = Field(description="The last failed poll's error.")
    gone: bool = Field(description="The API no longer reports it.")
    created_here: bool = Field(description="False: made elsewhere, found by reconciling.")
    ssh: SSHView | None
    kernel: str | None = Field(description="Its kernelspec while running.")
    cost_cents: int = Field(
        description="What it has cost: the API's `totalChargedCents` (a stop's settled total)."
    )
    quote: QuoteView | None
    provisioning: ProvisioningView | None = Field(description="While provisioning.")
    stop: StopView | None = Field(description="Once this server stopped it.")
    idle_stop: IdleStopView | None
    stop_reason: str | None = Field(description="`idle` when this server stopped it for that.")
    ended_at: str | None = Field(description="When it stopped, failed or vanished.")
    save_paths: list[str] = Field(description="The pod's folders saved before a stop.")
    save_paths_default: bool = Field(description="They are the default (the remote workdir).")
    saves: list[SaveView] = Field(description="Its saves, newest first.")
    transfer: TransferView | None = Field(description="The transfer running, or the last one.")
    workdir: WorkdirView | None = Field(description="Its working folder's push and setup.")
    auto_stop_at: str | None = Field(
        description="When gpuoutlet stops it (its autoStopAfterHours, counted from startedAt)."
    )
    checked_at: str | None = Field(
        None,
        description="When the rentals API last confirmed this state (null: not since this "
        "server started): how old what is shown is.",
    )


class ApiProblemView(RestModel):
    """The rentals API does not answer the watching: what is shown is as it last said."""

    message: str = Field(description="The last failure, in words, with what to do.")
    since: str = Field(description="When the failures began (ISO 8601).")
    last_ok_at: str | None = Field(description="When the API last answered (null: never).")


class PendingCreateView(RestModel):
    """A create not settled yet: sent and unanswered, or its answer lost and being looked for,
    or matched by several rentals, waiting for the user to say which to keep."""

    id: str = Field(description="`create_…`: what `POST creates/{id}` settles.")
    state: str = Field(description="`sending`, `looking` (its answer was lost), `ambiguous`.")
    name: str = Field(description="The name it was sent with (how it is found again).")
    family_id: str
    gpu_count: int
    price_per_hour_cents: int = Field(
        description="gpuoutlet's quote: counted against the spending cap until settled."
    )
    sent_at: str | None
    reason: str | None = Field(description="Why its answer was lost.")
    candidates: list[str] = Field(description="`ambiguous`: the rentals that match it.")
    message: str = Field(description="What is happening, in words, and what to do.")


class RentalsView(RestModel):
    """Every tracked rental, newest first, the creates not settled yet, and the list's version
    (the long-poll's cursor: it grows with a change of either)."""

    rentals: list[RentalView]
    pending_creates: list[PendingCreateView] = Field(
        default_factory=list,
        description="Creates whose answer was lost, not settled yet (`POST creates/{id}`).",
    )
    version: int
    api_problem: ApiProblemView | None = Field(
        None, description="Set while the rentals API does not answer: the list may be old."
    )


class CreateReply(RentalView):
    """The rental a create made (``POST rentals``)."""

    note: str | None = Field(
        description="Set when its answer was lost and the rental was found again by its name, "
        "or when the same request was already under way: what happened."
    )


class StopReply(RentalView):
    """The rental after a stop was asked for, with the notice that a stop is permanent."""

    already_stopped: bool = Field(
        description="gpuoutlet said it was stopped already (409 `already_stopped`): the stop "
        "is done, nothing was charged by this call."
    )
    notice: str = Field(description="A stop destroys the pod and its disk.")


class SettleReply(RestModel):
    """``POST creates/{id}``: the rentals kept, and the stops of the others."""

    kept: list[RentalView]
    stopped: list[StopReply]


class PathSizeView(RestModel):
    """One save path on the pod."""

    path: str
    exists: bool
    bytes: int | None = Field(description="Its apparent size (null: unknown).")


class SaveSizeView(RestModel):
    """``GET rentals/{id}/save-size``: what a save would copy, from one quick `du`."""

    rental_id: str
    paths: list[PathSizeView]
    total_bytes: int | None
    max_save_bytes: int | None = Field(description="The byte cap of a save (null: none).")
    fits: bool | None = Field(description="The whole fits under the cap (null: unknown).")
    save_timeout_seconds: float | None
    local_dir: str = Field(description="Where a save goes.")
    text: str = Field(description="`~/work (412 MB)`, for the stop dialog.")


class TransferReply(RestModel):
    """A rental's transfer (``rentals/{id}/transfer``, ``…/save``) and the rental's version."""

    rental_id: str
    transfer: TransferView | None
    version: int = Field(description="The rental's version (the long-poll cursor).")


class PreviewView(RestModel):
    """What a create would do, without doing it (``POST rentals/preview``)."""

    request: dict[str, Any] = Field(description="The create body that would be sent upstream.")
    quote: QuoteView
    available_cents: int
    burn_cents_per_hour: int = Field(description="The active rentals' prices summed.")
    max_hourly_spend_cents: int | None = Field(description="The spending cap (null: none).")
    key_on_account: bool | None = Field(
        description="The SSH entries' key is on the account (null: nothing to check)."
    )
    confirmation: str = Field(description="The line to show before the user confirms.")
    problems: list[Notice] = Field(
        description="Why a create would be refused (empty: it would go)."
    )


# Money, offers, keys, session.


class WalletView(RestModel):
    """The balance (``GET /v1/billing/balance``) plus what the tracked rentals burn."""

    available_cents: int = Field(description="Spendable on a new rental.")
    reserved_cents: int = Field(description="Held for running rentals (their first hour).")
    total_cents: int = Field(description="Available plus reserved.")
    open_invoices_cents: int = Field(description="Owed on open invoices (0: nothing).")
    open_invoice_count: int
    updated_at: str | None
    burn_cents_per_hour: int = Field(description="The active rentals' prices summed.")
    hours_left: float | None = Field(
        description="How long the wallet (total) lasts at that burn; null when nothing burns."
    )
    cost_cents: int = Field(description="What the tracked rentals have cost.")
    active_rentals: int
    max_hourly_spend_cents: int | None = Field(description="The spending cap (null: none).")
    warnings: list[Notice] = Field(
        description="`wallet_under_an_hour` (every pod stops at $0), `open_invoices`."
    )


class OfferView(RestModel):
    """One GPU count of a family at its cheapest."""

    gpu_count: int
    price_per_hour_cents: int = Field(description="The cheapest listing's whole price.")
    listings: int
    regions: list[str]
    providers: list[str]


class FamilyView(RestModel):
    """A GPU family, derived from the catalog's listings."""

    id: str = Field(description="The `familyId` a create takes.")
    models: list[str]
    vram_gb: float
    min_price_per_gpu_hour_cents: int = Field(description="Cheapest per GPU, rounded up.")
    regions: list[str] = Field(description="Display regions (`US-East`).")
    region_codes: list[str] = Field(description="ISO codes, what a create's `region` takes.")
    providers: list[str]
    offers: list[OfferView]
    listings: int


class FamiliesView(RestModel):
    families: list[FamilyView]


class TemplateView(RestModel):
    """One of gpuoutlet's machine templates."""

    id: str
    title: str
    contents: str
    ports: list[int] = Field(description="Ports its software serves (reach them over SSH).")
    ports_note: str | None
    default: bool


class TemplatesView(RestModel):
    templates: list[TemplateView]


class KeyView(RestModel):
    """One of the account's SSH keys."""

    id: str
    name: str
    fingerprint: str
    algorithm: str | None
    created_at: str | None
    local: bool = Field(description="The key this server's SSH entries use.")


class LocalKeyView(RestModel):
    """The key this server's SSH entries use."""

    identity_file: str
    public_key_file: str
    fingerprint: str
    algorithm: str
    comment: str
    on_account: bool = Field(description="False: new pods will not let it in; add it.")


class KeysView(RestModel):
    """The account's keys, and the local one (pods get the account's keys at launch only)."""

    keys: list[KeyView]
    local: LocalKeyView | None
    local_problem: str | None = Field(description="Why there is no local key to show.")


class AddKeyReply(RestModel):
    """``POST keys``: the local public key, added to the account."""

    key: KeyView
    already_on_account: bool
    note: str


class SessionView(RestModel):
    """Who is signed in (``GET /v1/auth/me``)."""

    user_id: str
    email: str
    expires_at: str
    seconds_left: int
    warning: str | None = Field(description="Set when fewer than 3 days are left.")


class PauseView(RestModel):
    """A 429 of gpuoutlet, and how long every request was held after it."""

    at: str | None
    seconds: float
    retry_after_given: bool = Field(description="False: no Retry-After, the vendor's 30 s.")


class BudgetView(RestModel):
    """The request budget: this host's share of gpuoutlet's limits, and its use."""

    per_minute: int = Field(description="Requests at most in any minute (gpuoutlet: 100).")
    per_hour: int = Field(description="Requests at most in any hour (gpuoutlet: 1,000).")
    used_last_minute: int
    used_last_hour: int
    waiting: int = Field(description="Requests waiting for their turn now.")
    held_until: str | None = Field(description="Every request is held until then (a 429).")
    held_seconds: float | None
    rate_limited_count: int = Field(description="429s gpuoutlet answered since the start.")
    last_pause: PauseView | None
    api_limit: int | None = Field(description="gpuoutlet's X-RateLimit-Limit, last seen.")
    api_remaining: int | None = Field(description="gpuoutlet's X-RateLimit-Remaining, now.")
    api_reset_at: str | None = Field(description="When gpuoutlet's window ends.")


SessionState = Literal["signed_in", "signed_out", "expired", "unknown"]


class CodeSentReply(RestModel):
    """``POST auth/request-code``: gpuoutlet emailed a sign-in code."""

    email: str
    created: bool = Field(description="gpuoutlet made a new account for this address.")
    message: str = Field(description="Where the code went and how it works, in words.")
    resend_after_seconds: int = Field(description="One code per email every 30 s.")
    code_lifetime_seconds: int = Field(description="A code works for 10 minutes, once.")
    attempts_per_code: int = Field(description="5 wrong tries end a code.")
    hint: str | None = Field(
        description="Where the code appears when the API sends no mail (a local sandbox)."
    )


class SignedInReply(RestModel):
    """``POST auth/verify-code``: signed in; the server uses the session at once."""

    session: SessionView
    message: str = Field(description="Who, until when, and where the session is kept.")
    sid_source: str = Field(description="Where the server's session comes from now.")
    credentials_file: str | None = Field(
        description="Where the session was saved (0600); null when it could not be."
    )
    note: str | None = Field(
        description="What else to know: GPUOUTLET_SID or a setting comes first after a "
        "restart, or the session could not be saved."
    )
    problem: str | None = Field(
        description="Signed in, but the rental service could not start: why."
    )


class SignedOutReply(RestModel):
    """``POST auth/logout``: signed out here, and (when it could be told) at gpuoutlet."""

    message: str = Field(description="What was done, in words.")
    vendor_told: bool = Field(description="gpuoutlet ended the session (`POST /v1/auth/logout`).")
    credentials_removed: bool = Field(description="The credentials file was deleted.")
    credentials_file: str
    still_running: list[str] = Field(
        description="Rentals that may still be billed, no longer watched until a sign-in."
    )
    note: str | None = Field(description="GPUOUTLET_SID or a setting still holds a session.")


class AuthView(RestModel):
    """``GET auth``: who is signed in, and how to sign in."""

    session_state: SessionState
    session: SessionView | None
    problem: str | None = Field(description="Why there is no usable session, in words.")
    api_url: str
    sid_source: str | None = Field(description="Where the session comes from (never the sid).")
    credentials_file: str
    last_email: str | None
    hint: str | None = Field(description="Where sign-in codes appear (a local sandbox).")


class StatusView(RestModel):
    """Where the API is, whether the server can rent, who is signed in."""

    configured: bool
    state: str = Field(description="`new`, `starting`, `running`, `not_configured`, `stopped`.")
    backend: str = Field(description="`server` or `in-process`.")
    api_url: str
    sid_configured: bool
    sid_source: str | None = Field(description="Where the sid came from (never the sid).")
    problem: str | None
    version: str
    ssh_dir: str | None
    poll_interval: float
    max_polls: int
    max_wait: float | None
    idle_stop_minutes: float | None = Field(description="The default idle stop (null: off).")
    idle_warn_minutes: float
    max_hourly_spend_cents: int | None
    session: SessionView | None = Field(description="Null when it could not be read.")
    session_problem: str | None = Field(description="Why the session could not be read.")
    session_state: SessionState = Field(
        description="`signed_in`, `signed_out` (no session: sign in), `expired` (gpuoutlet "
        "answered 401: sign in again) or `unknown` (it could not be asked)."
    )
    last_email: str | None = Field(
        description="The email of the account last signed in here (to sign in again)."
    )
    credentials_file: str = Field(description="Where a sign-in keeps the session (0600).")
    stop_notice: str = Field(description="Say it before every stop.")
    state_problems: list[str] = Field(
        description="What was wrong with the rentals state file at start (records set aside)."
    )
    request_budget: BudgetView | None = Field(
        None, description="The request budget's use (null: no service running)."
    )
    note: str | None = None
    remote_workdir: str | None = Field(None, description="The working folder on the pods.")
    saves_dir: str | None = Field(None, description="Where saves go on this machine.")
    max_save_bytes: int | None = Field(None, description="A save's byte cap (null: none).")
    save_timeout_seconds: float | None = Field(
        None, description="How long a save before a stop may take (null: no limit)."
    )
    api_problem: ApiProblemView | None = Field(
        None, description="Set while the rentals API does not answer the watching."
    )
    idle_gpu_util: float | None = Field(
        None, description="The default GPU threshold of an idle stop (null: GPUs do not count)."
    )
    telemetry_interval: float | None = Field(
        None, description="Seconds between two GPU telemetry samples while someone looks."
    )
    proxy_base: str | None = Field(
        None,
        description="`{base_url}proxy/` when jupyter-server-proxy serves this Jupyter server "
        "(a forwarded port opens at `<proxyBase><local port>/`); null otherwise.",
    )


# A rental's pod: telemetry and ports.


class GpuInfo(RestModel):
    """One GPU of a pod."""

    index: int
    name: str
    memory_total: float | None = Field(description="MiB.")


class GpuReading(RestModel):
    """One GPU at one moment; a value the GPU does not report is null."""

    index: int
    utilization: float | None = Field(description="Percent, 0-100.")
    memory_used: float | None = Field(description="MiB.")
    memory_total: float | None = Field(description="MiB.")
    temperature: float | None = Field(description="Degrees Celsius.")
    power: float | None = Field(description="Watts.")


class TelemetrySample(RestModel):
    """Every GPU of a pod at one moment."""

    at: str
    gpus: list[GpuReading]


class TelemetryView(RestModel):
    """A rental's GPU telemetry: sampled every interval while anyone looks (this reply is a
    look), the last ten minutes kept."""

    rental_id: str
    state: str = Field(
        description="`waiting` (no sample yet), `sampling`, `unavailable` (no nvidia-smi on "
        "the pod: `message` says so, and it is not asked again) or `error` (the last sample "
        "failed: `message`)."
    )
    message: str | None
    version: int = Field(description="Grows with every sample or error: `?since=` long-polls.")
    sampling: bool = Field(description="The sampler runs now (someone looks).")
    interval_seconds: float
    history_seconds: float
    gpu_count: int = Field(description="0 until the first sample.")
    gpu_model: str | None
    gpus: list[GpuInfo]
    samples: list[TelemetrySample] = Field(description="Oldest first.")


class KnownPortView(RestModel):
    """A port the rental's template is known to serve."""

    port: int
    label: str
    documented: bool = Field(description="False: the software's default, not in gpuoutlet's docs.")
    listening: bool = Field(description="Something listens on it on the pod now.")


class ListeningPortView(RestModel):
    """A TCP port something listens on, on the pod."""

    port: int
    address: str
    process: str | None = Field(description="The program, when `ss -p` could tell.")


class ForwardView(RestModel):
    """A port of the pod forwarded to this Jupyter server's machine over the shared SSH
    connection; it ends with the rental."""

    rental_id: str
    remote_port: int
    remote_host: str
    local_port: int
    local_url: str = Field(description="`http://127.0.0.1:<local port>/` on the server's machine.")
    proxy_path: str | None = Field(
        description="`{base_url}proxy/<local port>/` through jupyter-server-proxy (works when "
        "JupyterLab runs on another machine); null without it."
    )
    opened_at: str | None


class PortsView(RestModel):
    """The pod's ports: the template's known ones, the listening ones, the open forwards."""

    rental_id: str
    template_id: str | None
    known: list[KnownPortView]
    listening: list[ListeningPortView]
    forwards: list[ForwardView]


class ForwardsView(RestModel):
    """The rental's open forwards."""

    rental_id: str
    forwards: list[ForwardView]


# Remote kernels (the kernel records of the state dir: docs/remote-kernels.md).


class KernelView(RestModel):
    """One remote kernel of a rental and how its connection is (never its key)."""

    wrapper: str = Field(
        description="The kernel's id on its machine (its keeper's): what Reattach and Shut "
        "down take."
    )
    rental_id: str
    kernel_name: str = Field(description="The rental's kernelspec.")
    state: str = Field(
        description="`connecting`, `connected`, `reconnecting` (see `attempt`) or `detached` "
        "(no Jupyter drives it: it may be reattached or shut down)."
    )
    attempt: int = Field(description="While reconnecting: the try under way (else 0).")
    error: str | None = Field(description="Why the last reconnect attempt failed.")
    since: str | None = Field(
        description="When `state` last changed (ISO 8601); for a kernel whose Jupyter went away "
        "without a word, when that Jupyter last changed it."
    )
    started_at: str | None = Field(description="When the kernel was started (ISO 8601).")
    detached: bool = Field(description="No Jupyter drives it: Reattach and Shut down apply.")
    driven_here: bool = Field(description="This Jupyter server drives it (`kernelId` is its).")
    kernel_id: str | None = Field(description="Its Jupyter kernel id, while this server drives it.")
    notebook: str | None = Field(description="The notebook it was started for, when known.")
    detach_timeout_seconds: float | None = Field(
        description="How long it runs on once detached (null: until the rental stops)."
    )
    ends_at: str | None = Field(
        description="Detached with a detach timeout: when it ends by itself (ISO 8601)."
    )
    reattach_requested: bool = Field(description="The next start of its kernelspec adopts it.")
    notice: str = Field(
        description="Its state in words: `kernel on rent_… lost its connection, reconnecting, "
        "attempt 3`."
    )


class KernelsView(RestModel):
    """The remote kernels of every rental (or one), by rental, newest first; the version is the
    long-poll's cursor (it moves with any change of any kernel's state)."""

    kernels: list[KernelView]
    version: int


class ReattachReply(RestModel):
    """``POST remote-kernels/ID/reattach``: the detached kernel is adopted by a start of its kernelspec
    (``kernel``: as it was when Reattach was asked for)."""

    kernel: KernelView
    kernel_name: str = Field(description="The kernelspec that adopts it.")
    kernel_id: str | None = Field(
        description="The Jupyter kernel this server started, which adopted it (null: nothing was "
        "started here; the next start of `kernelName` adopts it)."
    )
    path: str | None = Field(
        description="Its notebook, relative to Jupyter's root, now with a session on that "
        "kernel: open it (null: none known, or it is not there any more)."
    )
    adopted: bool | None = Field(
        description="The kernel started is the detached one, variables and all (false: that one "
        "had ended, a new one was started; null: nothing was started here)."
    )
    message: str = Field(description="What happened and what to do next, in words.")


class KernelShutDownReply(RestModel):
    """``POST remote-kernels/ID/shutdown``: a detached kernel and its folder ended on its machine."""

    wrapper: str
    rental_id: str
    message: str


#: Every reply model, by the name the schema and the docs use.
REPLIES: dict[str, type[RestModel]] = {
    "StatusView": StatusView,
    "TemplatesView": TemplatesView,
    "FamiliesView": FamiliesView,
    "WalletView": WalletView,
    "KeysView": KeysView,
    "AddKeyReply": AddKeyReply,
    "RentalsView": RentalsView,
    "RentalView": RentalView,
    "CreateReply": CreateReply,
    "PreviewView": PreviewView,
    "StopReply": StopReply,
    "SettleReply": SettleReply,
    "SaveSizeView": SaveSizeView,
    "TransferReply": TransferReply,
    "TelemetryView": TelemetryView,
    "PortsView": PortsView,
    "ForwardView": ForwardView,
    "ForwardsView": ForwardsView,
    "AuthView": AuthView,
    "CodeSentReply": CodeSentReply,
    "SignedInReply": SignedInReply,
    "SignedOutReply": SignedOutReply,
    "ErrorReply": ErrorReply,
    "KernelsView": KernelsView,
    "ReattachReply": ReattachReply,
    "KernelShutDownReply": KernelShutDownReply,
}
