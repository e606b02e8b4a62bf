"""The key ring: every principal's key digests, from the keys file and from the plaintext settings.

The keys file is checked on every use (one `stat`) and read again when it changed, so adding, rotating or
revoking a key needs no restart. A file that has become unreadable, invalid or empty (truncated) is
reported in the log and the last good version stays in force (a typo must not lock every phone system out);
a file that was never good admits nobody from it, and the service still starts (fail closed: the loopback
exemption does not apply while a keys file is configured).

The settings (`CALLWATCH_INGEST_KEYS`, `_AGENT_TOKENS`, `_SUPERVISOR_TOKENS`) are further principals, for
development and for deployments that keep secrets in the environment; their values may be `sha256:<hex>`.
They are read from the live settings object on each use (tests and `callwatch demo` change them in place).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.access.keys import KeyEntry, Principal, digest_of, key_id_of, stored_digest
from service.access.keysfile import KeysFileError, load_keys_file
from service.access.teams import NO_TEAMS, TeamBook

log = logging.getLogger("callwatch.access")

# settings field → (role, whether the name is also the tenant)
SETTINGS_TABLES = {"ingest_keys": ("integrator", True), "agent_tokens": ("agent", False),
                   "supervisor_tokens": ("supervisor", False)}


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass
class _FileState:
    path: Path
    stamp: tuple[int, int, int] | None
    entries: list[KeyEntry]
    teams: TeamBook


class KeyRing:
    """Thread-safe: REST dependencies run in worker threads, sockets on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._file: _FileState | None = None
        self._settings_key: Any = None
        self._settings_entries: list[KeyEntry] = []
        self._no_file: list[KeyEntry] = []
        self._index: dict[str, list[KeyEntry]] = {}
        self._index_of: tuple[list[KeyEntry], list[KeyEntry]] | None = None

    # ------------------------------------------------------------ sources

    def _file_entries(self, path: Path | None) -> list[KeyEntry]:
        if path is None:
            self._file = None
            return self._no_file
        path = Path(path)
        stamp = _stamp(path)
        state = self._file
        if state is not None and state.path == path and state.stamp == stamp:
            return state.entries
        same_file = state is not None and state.path == path
        keep = state.entries if state is not None and same_file else []
        keep_teams = state.teams if state is not None and same_file else NO_TEAMS
        try:
            if stamp is None:
                raise KeysFileError(f"{path}: the keys file is missing")
            keys = load_keys_file(path)
        except KeysFileError as err:
            log.error("keys file not loaded, %s: %s", "keeping its last good version" if keep else "nobody admitted from it", err)
            self._file = _FileState(path, stamp, keep, keep_teams)
            return keep
        entries = [
            KeyEntry(Principal(p.role, p.name, p.effective_tenant, team=p.team, teams=tuple(p.teams or ())),
                     k.key_id, k.sha256, k.expires, str(path))
            for p in keys.principals for k in p.keys
        ]
        if state is not None:
            log.info("keys file %s re-read: %d principals, %d keys", path, len(keys.principals), len(entries))
        self._file = _FileState(path, stamp, entries, TeamBook.of(keys))
        return entries

    def _from_settings(self, settings: Any) -> list[KeyEntry]:
        tables = {field: dict(getattr(settings, field, None) or {}) for field in SETTINGS_TABLES}
        fingerprint = tuple((f, tuple(sorted(t.items()))) for f, t in tables.items())
        if fingerprint != self._settings_key:
            entries = []
            for field, table in tables.items():
                role, named_tenant = SETTINGS_TABLES[field]
                for name, value in table.items():
                    if not value:
                        continue
                    digest = stored_digest(value)
                    entries.append(KeyEntry(Principal(role, name, name if named_tenant else None), key_id_of(digest),
                                            digest, None, "settings"))
            self._settings_key, self._settings_entries = fingerprint, entries
        return self._settings_entries

    def entries(self, settings: Any) -> dict[str, list[KeyEntry]]:
        """Digest → the entries with that key (normally one), from both sources as they are now."""
        with self._lock:
            from_file = self._file_entries(getattr(settings, "keys_file", None))
            from_settings = self._from_settings(settings)
            built_from = self._index_of
            if built_from is None or built_from[0] is not from_file or built_from[1] is not from_settings:
                index: dict[str, list[KeyEntry]] = {}
                for entry in (*from_file, *from_settings):
                    index.setdefault(entry.digest, []).append(entry)
                self._index, self._index_of = index, (from_file, from_settings)
            return self._index

    # ------------------------------------------------------------ questions

    def configured_roles(self, settings: Any) -> set[str]:
        """Roles that have at least one key, expired or not."""
        return {e.principal.role for found in self.entries(settings).values() for e in found}

    def teams(self, settings: Any) -> TeamBook:
        """Which team each agent is in, from the keys file as it is now (none without one: the settings'
        plaintext keys have no teams)."""
        with self._lock:
            self._file_entries(getattr(settings, "keys_file", None))
            return self._file.teams if self._file is not None else NO_TEAMS

    def uses_keys_file(self, settings: Any) -> bool:
        return getattr(settings, "keys_file", None) is not None

    def lookup(self, settings: Any, key: str) -> list[KeyEntry]:
        """The entries whose key this is (expired ones included: the caller says why it refuses).

        Found by digest; the dictionary lookup can only reveal, through timing, something about a digest,
        and a digest of a 256-bit random key is of no use without the key. The final comparison is constant
        time all the same."""
        if not key:
            return []
        digest = digest_of(key)
        found = self.entries(settings).get(digest, [])
        return [e for e in found if hmac.compare_digest(e.digest, digest)]
