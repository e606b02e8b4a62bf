"""`callwatch keys add|rotate|revoke|list`: manage the keys file. A new key is printed once and only its
digest is written; the running service picks the change up by itself."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from service.access.keys import digest_of, new_key, utc
from service.access.keysfile import KeySpec, KeysFile, KeysFileError, PrincipalSpec, load_keys_file, save_keys_file

keys_app = typer.Typer(add_completion=False, no_args_is_help=True,
                       help="API keys: add, rotate, revoke, list (the keys file: --file or CALLWATCH_KEYS_FILE)")

_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class RoleName(str, Enum):
    integrator = "integrator"
    agent = "agent"
    supervisor = "supervisor"
    qa = "qa"


FileOption = typer.Option(None, "--file", help="the keys file (default: CALLWATCH_KEYS_FILE)")


def _path(file: Optional[Path]) -> Path:
    if file is not None:
        return file
    from service.settings import Settings

    configured = Settings().keys_file
    if configured is None:
        typer.echo("no keys file: pass --file or set CALLWATCH_KEYS_FILE", err=True)
        raise typer.Exit(2)
    return configured


def _load(path: Path, must_exist: bool = False) -> KeysFile:
    if not path.exists() and not must_exist:
        return KeysFile()
    try:
        return load_keys_file(path)
    except KeysFileError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2)


def _duration(text: str) -> timedelta:
    if text.strip() == "0":
        return timedelta(0)
    match = _DURATION.match(text.strip())
    if not match:
        raise typer.BadParameter(f"{text!r}: a duration like 90d, 12h, 30m or 0")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _moment(text: Optional[str], now: datetime) -> Optional[datetime]:
    """An expiry: a duration from now (90d) or an ISO date / date-time (UTC unless it carries an offset)."""
    if text is None:
        return None
    if _DURATION.match(text.strip()):
        return now + _duration(text)
    try:
        return utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: an ISO date or date-time, or a duration like 90d") from None


TenantOption = typer.Option(None, help="the tenant it belongs to, where several tenants have one of this name")


def _principal(keys: KeysFile, role: RoleName, name: str, tenant: Optional[str]) -> PrincipalSpec:
    found = keys.find_all(role.value, name, tenant)
    of = f" of tenant {tenant!r}" if tenant else ""
    if not found:
        typer.echo(f"no {role.value} {name!r}{of} in the keys file", err=True)
        raise typer.Exit(1)
    if len(found) > 1:
        tenants = ", ".join(repr(p.effective_tenant) for p in found)
        typer.echo(f"{role.value} {name!r} is in several tenants ({tenants}): say which with --tenant", err=True)
        raise typer.Exit(1)
    return found[0]


def _issue(principal: PrincipalSpec, now: datetime, expires: Optional[datetime], note: Optional[str]) -> tuple[str, KeySpec]:
    key = new_key()
    spec = KeySpec(sha256=digest_of(key), created=now, expires=expires, note=note)
    principal.keys.append(spec)
    return key, spec


def _announce(principal: PrincipalSpec, key: str, spec: KeySpec, path: Path) -> None:
    typer.echo(f"new key for {principal.role} {principal.name!r} (id {spec.key_id}), written to {path} as its digest.")
    typer.echo("It is shown only now; give it to its holder through a secure channel:")
    typer.echo(key)


TeamsOption = typer.Option(None, "--team", help="agents: their team; supervisors: a team they lead (repeat for several)")


def _set_teams(principal: PrincipalSpec, teams: list[str]) -> None:
    """`--team` on an agent is its team, on a supervisor the teams it leads; other roles have none."""
    if principal.role == "agent":
        if len(teams) > 1:
            raise typer.BadParameter("an agent belongs to one team", param_hint="--team")
        principal.team = teams[0]
    elif principal.role == "supervisor":
        principal.teams = list(dict.fromkeys(teams))
    else:
        raise typer.BadParameter(f"a {principal.role} has no team: teams are for agents and supervisors",
                                 param_hint="--team")


@keys_app.command("add")
def add(
    role: RoleName = typer.Argument(..., help="integrator, agent, supervisor or qa"),
    name: str = typer.Argument(..., help="integrator name, agent id, supervisor or QA user name"),
    tenant: Optional[str] = typer.Option(None, help="the tenant whose calls it may see (integrators: default their name; others: default all)"),
    expires: Optional[str] = typer.Option(None, help="expiry: a duration (90d) or an ISO date-time"),
    note: Optional[str] = typer.Option(None, help="a note kept with the key"),
    team: Optional[list[str]] = TeamsOption,
    file: Optional[Path] = FileOption,
) -> None:
    """Add a principal (or another key for one), print the key once. With --team, set its team(s) too."""
    path = _path(file)
    keys = _load(path)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    new = PrincipalSpec(role=role.value, name=name, tenant=tenant)
    # Another key for the principal of this role, name and tenant; with no --tenant, for the only one of
    # that name (several: say which).
    existing = keys.find_all(role.value, name, new.effective_tenant if tenant is not None else None)
    if len(existing) > 1:
        principal = _principal(keys, role, name, None)  # says which tenants, and exits
    elif existing:
        principal = existing[0]
    else:
        principal = new
        keys.principals.append(principal)
    if team:
        _set_teams(principal, team)
    key, spec = _issue(principal, now, _moment(expires, now), note)
    save_keys_file(path, keys)
    _announce(principal, key, spec, path)


@keys_app.command("rotate")
def rotate(
    role: RoleName = typer.Argument(...),
    name: str = typer.Argument(...),
    grace: str = typer.Option("24h", help="how long the old keys keep working (0: not at all)"),
    expires: Optional[str] = typer.Option(None, help="expiry of the new key: a duration or an ISO date-time"),
    tenant: Optional[str] = TenantOption,
    file: Optional[Path] = FileOption,
) -> None:
    """Issue a new key; the old ones keep working for the grace period, then are refused."""
    path = _path(file)
    keys = _load(path, must_exist=True)
    principal = _principal(keys, role, name, tenant)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    until = now + _duration(grace)
    old = []
    for spec in principal.keys:
        if spec.expires is None or spec.expires > until:
            spec.expires = until
        old.append(spec.key_id)
    key, spec = _issue(principal, now, _moment(expires, now), "rotated")
    save_keys_file(path, keys)
    _announce(principal, key, spec, path)
    if old:
        typer.echo(f"old keys {', '.join(old)} expire at {until.isoformat(timespec='seconds')}", err=True)


@keys_app.command("revoke")
def revoke(
    role: RoleName = typer.Argument(...),
    name: str = typer.Argument(...),
    key_id: Optional[str] = typer.Option(None, "--key", help="the key id to remove (see `callwatch keys list`)"),
    everything: bool = typer.Option(False, "--all", help="remove the principal and all its keys"),
    tenant: Optional[str] = TenantOption,
    file: Optional[Path] = FileOption,
) -> None:
    """Remove one key at once (or the principal with --all); the service refuses it from its next request."""
    if (key_id is None) == (not everything):
        typer.echo("say which: --key ID or --all", err=True)
        raise typer.Exit(2)
    path = _path(file)
    keys = _load(path, must_exist=True)
    principal = _principal(keys, role, name, tenant)
    if everything:
        keys.principals.remove(principal)
        removed = [k.key_id for k in principal.keys]
    else:
        removed = [k.key_id for k in principal.keys if k.key_id == key_id]
        if not removed:
            typer.echo(f"{role.value} {name!r} has no key {key_id!r}", err=True)
            raise typer.Exit(1)
        principal.keys = [k for k in principal.keys if k.key_id != key_id]
    save_keys_file(path, keys)
    typer.echo(f"revoked {role.value} {name!r}: {', '.join(removed) or 'no keys'}")


@keys_app.command("list")
def list_keys(
    file: Optional[Path] = FileOption,
    as_json: bool = typer.Option(False, "--json", help="one JSON object per key"),
) -> None:
    """Every principal and key: role, name, tenant, team(s), key id, created, expires, whether it is in force."""
    path = _path(file)
    keys = _load(path, must_exist=True)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = []
    for p in keys.principals:
        keys_or_none: list[KeySpec | None] = list(p.keys) or [None]  # a principal without keys is listed, as "no key"
        for k in keys_or_none:
            rows.append({
                "role": p.role, "name": p.name, "tenant": p.effective_tenant,
                "team": p.team if p.role == "agent" else ",".join(p.teams or []) or None,
                "key_id": k.key_id if k else None,
                "created": k.created.isoformat(timespec="seconds") if k and k.created else None,
                "expires": k.expires.isoformat(timespec="seconds") if k and k.expires else None,
                "state": "no key" if k is None else ("expired" if k.expires and k.expires <= now else "active"),
            })
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    columns = ("role", "name", "tenant", "team", "key_id", "created", "expires", "state")
    table = [columns] + [tuple(str(r[c] if r[c] is not None else "—") for c in columns) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())

