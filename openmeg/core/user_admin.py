"""Users and API clients added and their secrets replaced, each change in the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from openmeg.core.identity import Identities
from openmeg.core.sessions import Sessions

if TYPE_CHECKING:
    from datetime import datetime

    from openmeg.core.audit import AuditLog
    from openmeg.core.store import Store


def add_principal(
    store: Store,
    name: str,
    role: str,
    *,
    customer: str | None,
    kind: Literal["user", "client"],
    now: datetime,
    actor: str,
    audit: AuditLog,
) -> str:
    """A new user or client with a generated password or secret (returned, to be shown once);
    ``ValueError`` says why not."""
    secret = Identities(store).create(name, role, customer=customer, kind=kind, now=now)
    audit.append(
        ts=now,
        actor=actor,
        action="config",
        target=f"{kind}/{name}",
        detail={"role": role, "customer": customer},
    )
    return secret


def reset_secret(store: Store, name: str, *, now: datetime, actor: str, audit: AuditLog) -> str:
    """A new generated password or secret for ``name`` (returned, to be shown once); the old
    one stops working, and so do the sessions it started (their refresh tokens); ``ValueError``
    if there is nobody of that name."""
    secret = Identities(store).reset(name)
    ended = Sessions(store).end_all(name, now, "new password")
    audit.append(
        ts=now,
        actor=actor,
        action="config",
        target=f"password/{name}",
        detail={"refresh_tokens_revoked": ended} if ended else None,
    )
    return secret
