"""The REST API's one table: every service operation, its HTTP method and path.

Both skins are generated from this table: the server (`charter.api.routes`) turns each row into a
FastAPI route that calls `registry.<service>.<method>`, and the remote client
(`charter.client.remote`) turns the same row into the method of the same name that sends the
request. Parameter names and types come from the service method's own signature, so the three can
not drift apart: path parameters are named in the path, GET operations take the rest as query
parameters, every other method as a JSON body.

Operations that read or write the caller's local files (dataset add and checkout, prompt sync,
model registration with weights, ingest of a JSONL file, …) are not in this table: their remote
halves run on the client and use the dedicated routes in `charter.api.transfer`. No route of this
table makes the server open a path a caller names (see `Operation.guard`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    service: str  # attribute of the Registry holding the use case ("models")
    method: str  # the use case's method name ("promote")
    verb: str  # GET | POST | PUT | DELETE
    path: str  # under /api/v1, with {param} placeholders named like the method's parameters
    summary: str
    exclude: tuple[str, ...] = ()  # parameters the API never accepts (server-side paths, callbacks)
    paged: bool = False  # a list result: the API pages it (limit/offset, Link header)
    status: int = 200
    # A check in `charter.api.guards` run on the arguments first: for use cases whose embedded form
    # reads a path the caller names, which over the API would be a path on the server.
    guard: str | None = None

    @property
    def name(self) -> str:
        return f"{self.service}.{self.method}"


def _op(
    service: str,
    method: str,
    verb: str,
    path: str,
    summary: str,
    *,
    exclude: tuple[str, ...] = (),
    paged: bool = False,
    status: int | None = None,
    guard: str | None = None,
) -> Operation:
    return Operation(
        service,
        method,
        verb,
        path,
        summary,
        exclude,
        paged,
        status if status is not None else (201 if verb == "POST" and method in _CREATES else 200),
        guard,
    )


_CREATES = frozenset({"add", "create", "register", "eval", "signoff", "record_validation", "start"})

OPERATIONS: tuple[Operation, ...] = (
    # --- identities -----------------------------------------------------------------------------
    _op("users", "list", "GET", "/users", "List users and their roles", paged=True),
    _op("users", "add", "POST", "/users", "Add a user with roles"),
    _op("users", "get", "GET", "/users/{name}", "One user"),
    _op("users", "change_roles", "POST", "/users/{name}/roles", "Grant and revoke roles"),
    _op("users", "disable", "POST", "/users/{name}/disable", "Disable a user"),
    _op("users", "enable", "POST", "/users/{name}/enable", "Enable a user again"),
    _op("tokens", "list", "GET", "/tokens", "List API tokens (never their secrets)", paged=True),
    _op("tokens", "create", "POST", "/tokens", "Create an API token; the secret is returned once"),
    _op("tokens", "revoke", "POST", "/tokens/{token_id}/revoke", "Revoke an API token"),
    # --- the ledger and policies ---------------------------------------------------------------
    _op("audit", "log", "GET", "/audit/events", "Audit events, oldest first", paged=True),
    _op("audit", "verify", "GET", "/audit/verify", "Recompute the hash chain"),
    _op("checkpoints", "sign", "POST", "/audit/checkpoints", "Sign the chain head", exclude=("key_file",)),
    _op("checkpoints", "list", "GET", "/audit/checkpoints", "Signed checkpoints", paged=True),
    _op("policies", "show", "GET", "/policies/current", "The policies in force (now or at a time)"),
    _op("policies", "history", "GET", "/policies", "Every version of the policies", paged=True),
    _op("policies", "apply", "POST", "/policies", "Apply a new policy document"),
    _op("webhooks", "list", "GET", "/webhooks", "Webhooks", paged=True),
    _op("webhooks", "add", "POST", "/webhooks", "Add a webhook"),
    _op("webhooks", "get", "GET", "/webhooks/{webhook_id}", "One webhook"),
    _op("webhooks", "remove", "DELETE", "/webhooks/{webhook_id}", "Remove a webhook"),
    _op("webhooks", "deliver_due", "POST", "/webhooks/deliveries/run", "Deliver what is due now"),
    _op("webhooks", "deliveries", "GET", "/webhooks/{webhook_id}/deliveries", "Delivery status"),
    _op("webhooks", "prune", "POST", "/webhooks/deliveries/prune", "Delete old finished deliveries"),
    # --- models ---------------------------------------------------------------------------------
    _op("models", "list", "GET", "/models", "Registered models", paged=True),
    _op("models", "model", "GET", "/models/{name}", "One model: aliases, reviewers, versions"),
    _op("models", "versions", "GET", "/models/{name}/versions", "A model's versions", paged=True),
    _op(
        "models",
        "register",
        "POST",
        "/models/{name}/versions",
        "Register a model version from a spec document (weights by {uri, digest})",
        guard="spec_document_without_files",
    ),
    _op("models", "history", "GET", "/models/{name}/history", "Alias moves", paged=True),
    _op("models", "rollback", "POST", "/models/{name}/rollback", "Move production back"),
    _op("models", "reviewers", "POST", "/models/{name}/reviewers", "Designate reviewers"),
    _op("models", "set_primary_metrics", "PUT", "/models/{name}/primary-metrics", "Primary metrics"),
    _op("models", "get", "GET", "/model-versions/{ref}", "Resolve a model reference"),
    _op("models", "describe", "GET", "/model-versions/{ref}/details", "A version with its evidence"),
    _op("models", "diff", "GET", "/model-versions/{a}/diff", "Spec difference between versions"),
    _op("models", "eval", "POST", "/model-versions/{ref}/evaluations", "Record an evaluation"),
    _op("models", "signoff", "POST", "/model-versions/{ref}/signoffs", "Sign off a version"),
    _op("models", "promote", "POST", "/model-versions/{ref}/promote", "Promote through the gate"),
    _op("models", "waive", "POST", "/contamination-waivers", "Waive contamination of an evaluation"),
    # --- datasets -------------------------------------------------------------------------------
    _op("datasets", "list", "GET", "/datasets", "Latest version of every dataset", paged=True),
    _op("datasets", "versions", "GET", "/datasets/{name}/versions", "A dataset's versions", paged=True),
    _op("datasets", "get", "GET", "/dataset-versions/{ref}", "Resolve a dataset reference"),
    _op("datasets", "files", "GET", "/dataset-versions/{ref}/files", "Files of a version", paged=True),
    _op("datasets", "profile", "GET", "/dataset-versions/{ref}/profile", "Statistical profile"),
    _op("datasets", "diff", "GET", "/dataset-versions/{a}/diff", "Difference between versions"),
    _op("datasets", "overlap", "GET", "/dataset-versions/{a}/overlap", "Exact row overlap"),
    _op("datasets", "near_overlap", "GET", "/dataset-versions/{a}/near-overlap", "Near duplicates"),
    _op("datasets", "gc", "POST", "/datasets/gc", "Collect unreferenced blobs"),
    _op(
        "datasets",
        "add_table",
        "POST",
        "/datasets/{name}/tables",
        "Register an Iceberg or Delta table at one snapshot by reference (the server opens it)",
        exclude=("confine_to",),  # set by the guard from the server's CHARTER_LAKE_ROOTS
        guard="lake_table_under_roots",
    ),
    # --- prompts --------------------------------------------------------------------------------
    _op("prompts", "list", "GET", "/prompts", "Prompts with their environment pointers", paged=True),
    _op("prompts", "versions", "GET", "/prompts/{name}/versions", "A prompt's versions", paged=True),
    _op("prompts", "history", "GET", "/prompts/{name}/history", "Pointer moves", paged=True),
    _op("prompts", "rollback", "POST", "/prompts/{name}/rollback", "Move a pointer back"),
    _op("prompts", "get", "GET", "/prompt-versions/{ref}", "Resolve a prompt reference"),
    _op("prompts", "show", "GET", "/prompt-versions/{ref}/details", "A version with its evidence"),
    _op("prompts", "validations", "GET", "/prompt-versions/{ref}/validations", "Validations"),
    _op("prompts", "diff", "GET", "/prompt-versions/{a}/diff", "Compare two versions"),
    _op("prompts", "render", "POST", "/prompt-versions/{ref}/render", "Render with variables"),
    _op("prompts", "promote", "POST", "/prompt-versions/{ref}/promote", "Move to an environment"),
    _op(
        "prompts",
        "record_validation",
        "POST",
        "/prompt-versions/{ref}/validations",
        "Record a validation run made by the client",
    ),
    _op("prompts", "lock", "GET", "/environments/{environment}/lockfile", "Lockfile of an environment"),
    # --- slots, releases, rollouts ---------------------------------------------------------------
    _op("slots", "list", "GET", "/slots", "Slots", paged=True),
    _op("slots", "create", "POST", "/slots", "Create a slot", guard="policy_name_or_document"),
    _op("slots", "show", "GET", "/slots/{name}", "One slot"),
    _op("slots", "bootstrap", "POST", "/slots/{name}/bootstrap", "Make a first release production"),
    _op("slots", "rollback", "POST", "/slots/{name}/rollback", "Roll production back"),
    _op("slots", "inputs", "GET", "/slots/{name}/inputs", "Sampled production inputs", paged=True),
    _op("releases", "list", "GET", "/slots/{slot}/releases", "A slot's releases", paged=True),
    _op("releases", "create", "POST", "/slots/{slot}/releases", "Create a release"),
    _op("releases", "get", "GET", "/releases/{ref}", "A release by digest prefix"),
    _op("rollouts", "status", "GET", "/slots/{slot}/rollout", "The slot's rollout and gate"),
    _op("rollouts", "start", "POST", "/slots/{slot}/rollout", "Start a rollout"),
    _op("rollouts", "advance", "POST", "/slots/{slot}/rollout/advance", "Advance a stage"),
    _op("rollouts", "approve", "POST", "/slots/{slot}/rollout/approve", "Approve the rollout"),
    _op("rollouts", "check", "POST", "/slots/{slot}/rollout/checklist", "Tick a checklist item"),
    _op("rollouts", "pause", "POST", "/slots/{slot}/rollout/pause", "Pause"),
    _op("rollouts", "resume", "POST", "/slots/{slot}/rollout/resume", "Resume"),
    _op("rollouts", "abort", "POST", "/slots/{slot}/rollout/abort", "Abort and roll back"),
    _op("rollouts", "tick", "POST", "/rollouts/tick", "Evaluate expiries and automatic rollbacks"),
    _op("rollouts", "incident", "POST", "/slots/{slot}/incidents", "Report an incident", status=201),
    _op("rollouts", "incidents", "GET", "/slots/{slot}/incidents", "Incidents", paged=True),
    # --- provenance -----------------------------------------------------------------------------
    _op("provenance", "trace", "GET", "/transactions/{txn_id}/trace", "A transaction's full chain"),
    _op("provenance", "state", "GET", "/slots/{slot}/state", "What a slot ran at an instant"),
    _op("provenance", "state_diff", "GET", "/slots/{slot}/state-diff", "What changed between t1 and t2"),
    _op("provenance", "changes", "GET", "/changes", "Audited changes in a window", paged=True),
    _op(
        "provenance",
        "production_periods",
        "GET",
        "/models/{model}/production-periods",
        "When each version of a model served production",
    ),
)

BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS}
