"""The SCRAM credential store: per user and mechanism, the salt, stored key, server key and
iterations (never a password), as Kafka keeps them in its metadata log.

Kept in `<data dir>/scram-credentials.json`, replaced whole and durably
(`ottla.storage.files.replace_file`: written, fsynced, renamed, directory fsynced) on each
change, so a SIGKILL or power loss leaves the old set or the new one. A whole-file
replace rather than records in an internal log: credentials are a small table altered by
an operator now and then, read on every SCRAM login, and never need history or compaction;
finalized features and dynamic broker configs are kept the same way.

Over PostgreSQL the credentials are the database's, shared by every broker on it
(server/security/database.py): `record_change` then takes each change instead of the file, and
`reset` puts the table as another broker left it in place.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ottla.server.security.sasl.scram import ScramCredential, ScramMechanism
from ottla.storage.files import replace_file

FILE_NAME = "scram-credentials.json"
_FORMAT_VERSION = 1


class ScramCredentialStore:
    """Credentials by (user, mechanism). Without a data directory they last as long as the broker."""

    def __init__(self, path: Path | None, credentials: dict[str, dict[ScramMechanism, ScramCredential]]) -> None:
        self._path = path
        self._credentials = credentials
        # Over PostgreSQL: what records each change (deleted, upserted) instead of the file.
        self.record_change: Callable[[list[tuple[str, ScramMechanism]], list[tuple[str, ScramMechanism, ScramCredential]]], None] | None = None

    @classmethod
    def open(cls, data_dir: Path | None) -> ScramCredentialStore:
        path = None if data_dir is None else data_dir / FILE_NAME
        if path is None or not path.exists():
            return cls(path, {})
        kept = json.loads(path.read_text(encoding="utf-8"))
        credentials: dict[str, dict[ScramMechanism, ScramCredential]] = {}
        for user, by_mechanism in kept["users"].items():
            for name, fields in by_mechanism.items():
                mechanism = ScramMechanism.by_name(name)
                if mechanism is None:
                    continue
                credentials.setdefault(user, {})[mechanism] = ScramCredential(
                    base64.b64decode(fields["salt"]),
                    base64.b64decode(fields["stored_key"]),
                    base64.b64decode(fields["server_key"]),
                    int(fields["iterations"]),
                )
        return cls(path, credentials)

    def get(self, user: str, mechanism: ScramMechanism) -> ScramCredential | None:
        return self._credentials.get(user, {}).get(mechanism)

    def users(self) -> Iterator[str]:
        return iter(sorted(self._credentials))

    def mechanisms_of(self, user: str) -> dict[ScramMechanism, ScramCredential]:
        return dict(self._credentials.get(user, {}))

    def apply(
        self,
        deletions: Iterable[tuple[str, ScramMechanism]],
        upsertions: Iterable[tuple[str, ScramMechanism, ScramCredential]],
    ) -> None:
        """Delete and upsert together, then write the whole set once: one durable change."""
        deletions, upsertions = list(deletions), list(upsertions)
        for user, mechanism in deletions:
            by_mechanism = self._credentials.get(user, {})
            by_mechanism.pop(mechanism, None)
            if not by_mechanism:
                self._credentials.pop(user, None)
        for user, mechanism, credential in upsertions:
            self._credentials.setdefault(user, {})[mechanism] = credential
        if self.record_change is not None:
            self.record_change(deletions, upsertions)
        else:
            self._write()

    def reset(self, credentials: dict[str, dict[ScramMechanism, ScramCredential]]) -> None:
        """Every credential replaced by `credentials`, as the database now has them."""
        self._credentials = credentials

    def _write(self) -> None:
        if self._path is None:
            return
        users = {
            user: {
                mechanism.mechanism_name: {
                    "salt": base64.b64encode(credential.salt).decode(),
                    "stored_key": base64.b64encode(credential.stored_key).decode(),
                    "server_key": base64.b64encode(credential.server_key).decode(),
                    "iterations": credential.iterations,
                }
                for mechanism, credential in sorted(by_mechanism.items(), key=lambda item: item[0].type_code)
            }
            for user, by_mechanism in sorted(self._credentials.items())
        }
        replace_file(self._path, json.dumps({"version": _FORMAT_VERSION, "users": users}, indent=1).encode())
