"""Users, tokens, project shares and the audit log.

The operations decide who may do what (an administrator manages everyone;
a user sees themselves, their own tokens and the shares of the projects
they own) and audit every change themselves, so these routes only
translate.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from corral.ops import audit, tokens, users
from corral.ops.access import Access, project_shares, share_project, unshare_project
from corral.ops.identity import Scope
from corral.server import models
from corral.server.context import Caller
from corral.state.accounts import Quota

router = APIRouter(tags=["accounts"])
UserName = Annotated[str, Path(max_length=64)]
ProjectName = Annotated[str, Path(max_length=200)]


@router.get("/whoami", response_model=models.Caller, summary="The caller's identity")
def whoami(call: Caller) -> dict[str, Any]:
    who = call.identity
    return {"name": who.name, "admin": who.admin, "scope": who.scope.value,
            "source": who.source}


@router.get("/users", summary="Every user (administrators), else the caller alone")
def list_users(call: Caller) -> list[dict[str, object]]:
    return [users.user_json(u) for u in users.list_users(call.session, call.identity)]


@router.post("/users", status_code=201, summary="Add a user; their first token is in the "
             "answer, once (administrators)")
def add_user(call: Caller, body: models.UserAdd) -> dict[str, object]:
    quota = Quota(body.quota.max_vms, body.quota.max_memory_mib, body.quota.max_vcpus)
    return users.add_user(call.session, call.identity, body.name, admin=body.admin,
                          quota=quota).as_json()


@router.get("/users/{name}", summary="One user (themselves, or administrators)")
def get_user(call: Caller, name: UserName) -> dict[str, object]:
    return users.user_json(users.get_user(call.session, call.identity, name))


@router.delete("/users/{name}", summary="Remove a user, their tokens and the shares they were "
               "given (administrators)")
def remove_user(call: Caller, name: UserName) -> dict[str, object]:
    removed = users.remove_user(call.session, call.identity, name)
    return {"user": removed.user, "tokens": removed.tokens, "shares": removed.shares,
            "projects": list(removed.projects)}


@router.get("/users/{name}/removal", summary="What removing a user would take with them "
            "(administrators)")
def user_removal(call: Caller, name: UserName) -> dict[str, object]:
    preview = users.removal_preview(call.session, call.identity, name)
    return {"user": preview.user, "tokens": preview.tokens, "shares": preview.shares,
            "projects": list(preview.projects)}


@router.put("/users/{name}/password", status_code=204, response_class=Response,
            summary="Set a user's portal password")
def set_password(call: Caller, name: UserName, body: models.Password) -> Response:
    users.set_password(call.session, call.identity, name, body.password)
    return Response(status_code=204)


@router.patch("/users/{name}/quota", summary="Change the given quota limits (null: unlimited; "
              "administrators)")
def change_quota(call: Caller, name: UserName, body: models.Limits) -> dict[str, object]:
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    found = users.change_quota(call.session, call.identity, name, changes)
    return users.user_json(found)


@router.get("/tokens", summary="Tokens (ids, labels, dates; never the secrets)")
def list_tokens(
    call: Caller, user: Annotated[str | None, Query(max_length=64)] = None
) -> list[dict[str, object]]:
    return [tokens.token_json(t) for t in tokens.list_tokens(call.session, call.identity, user)]


@router.post("/tokens", status_code=201, summary="Issue a token; it is in the answer, once")
def create_token(call: Caller, body: models.TokenCreate) -> dict[str, object]:
    scope = Scope.METRICS if body.metrics_only else Scope.FULL
    return tokens.create_token(call.session, call.identity, body.user, body.name,
                               scope).as_json()


@router.delete("/tokens/{token_id}", summary="Revoke a token: it authenticates nobody from now")
def revoke_token(call: Caller, token_id: Annotated[int, Path(ge=1, le=2**62)]
                 ) -> dict[str, object]:
    return tokens.token_json(tokens.revoke_token(call.session, call.identity, token_id))


@router.get("/projects/{project}/shares", summary="A project's owner and shares")
def shares(call: Caller, project: ProjectName) -> dict[str, object]:
    return project_shares(call.session, call.identity, project).as_json()


@router.put("/projects/{project}/shares/{user}", summary="Share a project, read or write")
def share(call: Caller, project: ProjectName, user: UserName,
          body: models.Share) -> dict[str, object]:
    record = share_project(call.session, call.identity, project, user, Access(body.access))
    return {"project": record.project, "user": record.user, "access": record.access,
            "since": record.since.isoformat()}


@router.delete("/projects/{project}/shares/{user}", status_code=204, response_class=Response,
               summary="Stop sharing a project with a user")
def unshare(call: Caller, project: ProjectName, user: UserName) -> Response:
    unshare_project(call.session, call.identity, project, user)
    return Response(status_code=204)


@router.get("/audit", summary="The audit log, newest first (administrators)")
def audit_log(call: Caller, since: Annotated[str | None, Query(max_length=64)] = None,
              user: Annotated[str | None, Query(max_length=64)] = None,
              limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> list[dict[str, object]]:
    with call.refusals("audit", user or "*"):
        found = audit.entries(call.session, call.identity, since=since, user=user, limit=limit)
    return [e.as_json() for e in found]
