"""The keys file (CALLWATCH_KEYS_FILE): principals, their roles and tenants, and the digests of their keys.

YAML, or JSON when the name ends in `.json`. `callwatch keys` writes it (atomically, mode 0600, so the
service never reads half a file); people may edit it too. The service re-reads it when it changes.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rules.encodings import UndecodableText, decode_text
from service.access.keys import Role, key_id_of, utc
from wire.errors import describe_invalid


# libyaml's loader where installed: the file is read again on the request after each change.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KeysFileError(ValueError):
    """The file cannot be read or is not a valid keys file; the message names the file and the place."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeySpec(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the key; the key itself is never stored")
    id: str | None = Field(None, max_length=64, description="name in logs and listings; default: the digest's first 12 hex")
    created: datetime | None = None
    expires: datetime | None = Field(None, description="from this moment the key is refused (UTC unless an offset is given)")
    note: str | None = Field(None, max_length=200)

    @field_validator("created", "expires")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return utc(v) if v is not None else None

    @property
    def key_id(self) -> str:
        return self.id or key_id_of(self.sha256)


TeamName = Annotated[str, Field(min_length=1, max_length=128)]


class PrincipalSpec(_Strict):
    role: Role
    name: str = Field(min_length=1, max_length=128, description="integrator name, agent id, supervisor or QA user name")
    tenant: str | None = Field(None, min_length=1, max_length=128,
                               description="the tenant whose calls it may see; integrators default to their name")
    team: TeamName | None = Field(None, description="agents only: the team the agent belongs to")
    teams: list[TeamName] | None = Field(None, min_length=1,
                                         description="supervisors only: the teams whose agents it sees and rules for; "
                                                     "none: every agent of its tenant")
    keys: list[KeySpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _teams_fit_the_role(self) -> "PrincipalSpec":
        # Said, not ignored: a `team` on a supervisor would otherwise quietly leave it seeing every team.
        if self.team is not None and self.role != "agent":
            raise ValueError(f"{self.role} {self.name!r}: `team` is an agent's; a supervisor leads `teams`")
        if self.teams is not None and self.role != "supervisor":
            raise ValueError(f"{self.role} {self.name!r}: `teams` is a supervisor's; an agent belongs to one `team`")
        return self

    @property
    def effective_tenant(self) -> str | None:
        return self.tenant or (self.name if self.role == "integrator" else None)


class KeysFile(_Strict):
    version: Literal[1] = 1
    principals: list[PrincipalSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> "KeysFile":
        # Per tenant: two tenants' contact centres may both have an agent A1042.
        seen: set[tuple[str, str, str | None]] = set()
        for p in self.principals:
            if (p.role, p.name, p.effective_tenant) in seen:
                of = f" of tenant {p.effective_tenant!r}" if p.effective_tenant else ""
                raise ValueError(f"{p.role} {p.name!r}{of} is listed twice")
            seen.add((p.role, p.name, p.effective_tenant))
        return self

    def find_all(self, role: str, name: str, tenant: str | None = None) -> list[PrincipalSpec]:
        """The principals of this role and name; with `tenant`, only that tenant's."""
        return [p for p in self.principals
                if p.role == role and p.name == name and (tenant is None or p.effective_tenant == tenant)]


def _is_json(path: Path) -> bool:
    return path.suffix.lower() == ".json"


def load_keys_file(path: Path) -> KeysFile:
    """The file's principals. An empty file (0 bytes, or only blanks and comments) is an error, not a file
    without principals: that is what a truncated file looks like (a full disk, an editor or a configuration
    tool that failed half-way), and it must not lock everyone out. A file meant to admit nobody says so:
    `version: 1` and `principals: []`."""
    try:
        text = decode_text(path.read_bytes(), str(path))
    except OSError as err:
        raise KeysFileError(f"{path}: cannot read the keys file ({err.strerror or err})") from None
    except UndecodableText as err:
        raise KeysFileError(f"{err} (the keys file)") from None
    try:
        data = json.loads(text) if _is_json(path) else yaml.load(text, Loader=_YAML_LOADER)
    except (ValueError, yaml.YAMLError) as err:
        raise KeysFileError(f"{path}: not valid {'JSON' if _is_json(path) else 'YAML'}: {err}") from None
    if data is None:
        raise KeysFileError(f"{path}: the keys file is empty; one that admits nobody holds `principals: []`")
    try:
        return KeysFile.model_validate(data)
    except ValidationError as err:
        raise KeysFileError(f"{path}: {describe_invalid(err, 'file')}") from None


def save_keys_file(path: Path, keys: KeysFile) -> None:
    """Write to a temporary file beside it, then rename: readers see the old file or the new one, whole."""
    data = keys.model_dump(mode="json", exclude_none=True)
    text = (json.dumps(data, ensure_ascii=False, indent=2) + "\n" if _is_json(path)
            else "# callwatch keys file: digests only, see docs/security.md\n"
            + yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
