"""Users, tokens, project shares and the audit log: ``corral user|token|project|audit``.

On the machine itself the CLI acts as the site administrator (the identity
of its session), so these commands manage the server's users directly in
the state database; with ``--server`` they act as the token's user through
the API, under the same rules. Secrets appear once: the token of ``user add`` and
``token create`` is printed, never stored, never listed.
"""

from __future__ import annotations

import sys
from typing import Annotated

import click
import typer

from corral.cli import render_access
from corral.cli.app import app
from corral.cli.project_cmds import JsonOpt, _emit_json
from corral.cli.state import operations
from corral.errors import ConflictError, InvalidRequest

SHOWN_ONCE = "This token will not be shown again: store it now."
_HELP = {"help_option_names": ["--help"]}

user = typer.Typer(
    help="People who may use the server, their passwords and quotas.\n\n"
    "Example: corral user add alice --max-vms 10 --max-memory 16G",
    no_args_is_help=True, context_settings=_HELP,
)
token = typer.Typer(
    help="API tokens (bearer tokens of the REST API).\n\n"
    "Example: corral token create alice --name laptop",
    no_args_is_help=True, context_settings=_HELP,
)
project = typer.Typer(
    help="Who may see and change a project besides its owner.\n\n"
    "Example: corral project share lab bob --read",
    no_args_is_help=True, context_settings=_HELP,
)
app.add_typer(user, name="user")
app.add_typer(token, name="token")
app.add_typer(project, name="project")

UserArg = Annotated[str, typer.Argument(help="User name.")]
MaxVms = Annotated[
    str | None, typer.Option("--max-vms", help="Most VMs over all their projects (none: no limit).")
]
MaxMemory = Annotated[
    str | None,
    typer.Option("--max-memory", help="Most memory, MiB or a size such as 16G (none: no limit)."),
]
MaxVcpus = Annotated[
    str | None, typer.Option("--max-vcpus", help="Most vCPUs (none: no limit).")
]


def _limits(max_vms: str | None, max_memory: str | None,
            max_vcpus: str | None) -> dict[str, int | None]:
    """The limits the command line gives, parsed by the operations layer."""
    from corral.ops.users import parse_limit

    given: dict[str, int | None] = {}
    if max_vms is not None:
        given["max_vms"] = parse_limit(max_vms, "--max-vms")
    if max_memory is not None:
        given["max_memory_mib"] = parse_limit(max_memory, "--max-memory", size=True)
    if max_vcpus is not None:
        given["max_vcpus"] = parse_limit(max_vcpus, "--max-vcpus")
    return given


# ---------------------------------------------------------------- user


@user.command()
def add(
    ctx: typer.Context,
    name: UserArg,
    admin: Annotated[bool, typer.Option("--admin", help="May do everything.")] = False,
    max_vms: MaxVms = None, max_memory: MaxMemory = None, max_vcpus: MaxVcpus = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a user and print their first API token (shown this once).

    Example: corral user add alice --max-vms 10 --max-memory 16G --max-vcpus 20
    """
    from corral.state.accounts import Quota

    added = operations(ctx, quiet=as_json).add_user(
        name, admin=admin, quota=Quota(**_limits(max_vms, max_memory, max_vcpus)))
    if as_json:
        _emit_json(added.as_json())
        return
    kind = "administrator" if added.user.admin else "user"
    print(f"{kind} {added.user.name} added ({render_access.quota(added.user.quota)})")
    print(f"token {added.token.record.id}: {added.token.token}")
    print(SHOWN_ONCE)


@user.command()
def passwd(
    ctx: typer.Context,
    name: UserArg,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Set a user's password for the web portal (asked twice, not echoed).

    Example: corral user passwd alice; echo "$PW" | corral user passwd alice --password-stdin
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    else:
        raise InvalidRequest("no terminal to ask the password on",
                             hint="pass --password-stdin and write it to standard input")
    operations(ctx).set_password(name, password)
    print(f"password of user {name} set")


@user.command(name="list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the users, with their quotas.

    Example: corral user list --json
    """
    from corral.ops.users import user_json

    found = operations(ctx, quiet=as_json).list_users()
    if as_json:
        _emit_json([user_json(u) for u in found])
    else:
        render_access.users(found)


@user.command()
def remove(
    ctx: typer.Context,
    name: UserArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Remove a user: their tokens are deleted and the shares they were given withdrawn;
    the projects they own stay, VMs untouched, as the administrators' alone.

    Example: corral user remove alice --yes
    """
    from corral.ops.users import describe_removal

    ops = operations(ctx)
    if not yes:
        summary = f"user {name}: " + describe_removal(ops.user_removal(name))
        if not sys.stdin.isatty():
            raise ConflictError(f"{summary}\nrefusing to remove without --yes",
                                hint="no terminal to ask; pass --yes")
        typer.confirm(f"{summary}\nRemove user {name}?", abort=True)
    removed = ops.remove_user(name)
    print(f"user {name} removed: {describe_removal(removed)}")


@user.command()
def quota(
    ctx: typer.Context,
    name: UserArg,
    max_vms: MaxVms = None, max_memory: MaxMemory = None, max_vcpus: MaxVcpus = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a user's quota, or change the limits given (none: no limit).

    Example: corral user quota alice --max-memory 32G --max-vcpus none
    """
    from corral.ops.users import user_json

    ops = operations(ctx, quiet=as_json)
    changes = _limits(max_vms, max_memory, max_vcpus)
    found = ops.change_quota(name, changes) if changes else ops.get_user(name)
    if as_json:
        _emit_json(user_json(found)["quota"])
    else:
        print(f"user {found.name}: {render_access.quota(found.quota)}")


# ---------------------------------------------------------------- token


@token.command()
def create(
    ctx: typer.Context,
    name: UserArg,
    label: Annotated[str, typer.Option("--name", help="A label: where the token is used.")] = "",
    metrics_only: Annotated[
        bool, typer.Option("--metrics-only", help="The token reads metrics and nothing else.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Issue an API token for a user and print it (shown this once).

    Example: corral token create alice --name ci
    """
    from corral.ops.identity import Scope

    issued = operations(ctx, quiet=as_json).create_token(
        name, label, Scope.METRICS if metrics_only else Scope.FULL)
    if as_json:
        _emit_json(issued.as_json())
        return
    print(f"token {issued.record.id} of {name} ({issued.record.scope}): {issued.token}")
    print(SHOWN_ONCE)


@token.command(name="list")
def token_list(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List tokens: ids, labels, scopes and dates, never the tokens themselves.

    Example: corral token list alice --json
    """
    from corral.ops.tokens import token_json

    found = operations(ctx, quiet=as_json).list_tokens(name)
    if as_json:
        _emit_json([token_json(t) for t in found])
    else:
        render_access.tokens(found)


@token.command()
def revoke(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(metavar="ID", help="Token id (token list).")],
) -> None:
    """Revoke a token: from now on it authenticates nobody.

    Example: corral token revoke 7
    """
    revoked = operations(ctx).revoke_token(token_id)
    print(f"token {revoked.id} of {revoked.user} revoked")


# ---------------------------------------------------------------- project shares


@project.command()
def share(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="PROJECT", help="Project name.")],
    to: Annotated[str, typer.Argument(metavar="USER", help="User to share it with.")],
    read: Annotated[bool, typer.Option("--read", help="Look only: status, show, plan, log.")]
    = False,
    write: Annotated[bool, typer.Option("--write", help="Everything the owner may do.")]
    = False,
) -> None:
    """Share a project with a user, read-only or read-write.

    Example: corral project share lab bob --read
    """
    from corral.ops.access import Access

    if read == write:
        raise click.UsageError("give exactly one of --read and --write")
    shared = operations(ctx).share(name, to, Access.READ if read else Access.WRITE)
    print(f"project {shared.project} shared with {shared.user} ({shared.access})")


@project.command()
def unshare(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="PROJECT", help="Project name.")],
    to: Annotated[str, typer.Argument(metavar="USER", help="User to stop sharing it with.")],
) -> None:
    """Stop sharing a project with a user.

    Example: corral project unshare lab bob
    """
    operations(ctx).unshare(name, to)
    print(f"project {name} no longer shared with {to}")


@project.command()
def shares(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="PROJECT", help="Project name.")],
    as_json: JsonOpt = False,
) -> None:
    """A project's owner and the users it is shared with.

    Example: corral project shares lab --json
    """
    found = operations(ctx, quiet=as_json).shares(name)
    if as_json:
        _emit_json(found.as_json())
    else:
        render_access.shares(found)


# ---------------------------------------------------------------- audit


@app.command()
def audit(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    since: Annotated[
        str | None, typer.Option("--since", help="From this time (ISO 8601, UTC) or age (1h, 2d).")
    ] = None,
    name: Annotated[str | None, typer.Option("--user", help="Only this user's entries.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 100,
) -> None:
    """The audit log: who did what, from where, and whether it was allowed.

    Example: corral audit --since 2d --user alice
    """
    found = operations(ctx, quiet=as_json).audit(since=since, user=name, limit=limit)
    if as_json:
        _emit_json([e.as_json() for e in found])
    else:
        render_access.audit(found)
