"""The site's keystore and audit log for the ``openmeg`` commands (docs/security.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from openmeg.cli.common import fail

if TYPE_CHECKING:
    from pathlib import Path

    from openmeg.core.audit import AuditLog
    from openmeg.core.keystore import Keystore
    from openmeg.core.store import Store


def keystore_or_exit(site_id: str, path: Path | None = None) -> Keystore:
    """The site's keystore (at ``path``, else OPENMEG_KEYSTORE or the default place; sealed per
    OPENMEG_KEYSTORE_PASSPHRASE), or exit 2 saying why it cannot be opened."""
    from openmeg.core.keystore import KeystoreError, open_keystore

    try:
        return open_keystore(path, site_id=site_id)
    except KeystoreError as err:
        fail(str(err))


def audit_or_exit(site_id: str, store: Store) -> AuditLog:
    """The audit log in ``store`` under the site's audit key, or exit 2 saying why not."""
    from openmeg.core.audit import AuditKeyError, audit_log_of

    try:
        return audit_log_of(store, keystore_or_exit(site_id))
    except AuditKeyError as err:
        fail(str(err))
