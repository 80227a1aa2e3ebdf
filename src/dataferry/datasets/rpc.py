"""The dataset methods of the XML-RPC and JSON-RPC doors (over the same services)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dataferry.app import Core


def register(core: Core) -> None:
    rpc: Any = getattr(core, "rpc", None)
    if rpc is None:  # no RPC doors in this build
        return

    def publish(uid: str, source: str, meta: dict[str, str] | None = None) -> dict[str, Any]:
        """Publish (or re-publish) dataset UID from ENDPOINT:PATH; returns the dataset."""
        return core.provider.publish(uid, source, meta or {}).document(with_manifest=False)

    def broadcast(uid: str, site: str = "") -> list[dict[str, Any]]:
        """Announce dataset UID to every consumer site (or one); one result per site."""
        return core.provider.broadcast(uid, site or None)

    def status(uid: str) -> dict[str, Any]:
        """Where a dataset delivered to us stands (its state and last message)."""
        return core.consumer.get(uid).document()

    def restart(uid: str) -> dict[str, Any]:
        """Restart a failed dataset delivered to us."""
        return core.consumer.restart(uid).document()

    def forget(uid: str) -> dict[str, Any]:
        """Remove a complete or permanently failed dataset delivered to us (its record
        and history; the files stay); returns {"forgotten": uid}."""
        core.consumer.forget(uid)
        return {"forgotten": uid}

    def history(uid: str) -> list[dict[str, Any]]:
        """Every state change of a dataset delivered to us."""
        return core.consumer.history(uid)

    def show(uid: str) -> dict[str, Any]:
        """A published dataset with its manifest."""
        return core.provider.get(uid).document()

    def transfer_status(uid: str, site: str, transfer_id: int) -> dict[str, Any]:
        """Where delivery TRANSFER_ID of dataset UID to SITE stands: what the provider
        answers that site's poll (GET .../transfer-status), "server error" included."""
        return core.provider.transfer_status(uid, site, transfer_id)

    for name, fn in (
        ("datasets.publish", publish),
        ("datasets.transfer_status", transfer_status),
        ("datasets.broadcast", broadcast),
        ("datasets.status", status),
        ("datasets.restart", restart),
        ("datasets.forget", forget),
        ("datasets.history", history),
        ("datasets.show", show),
    ):
        rpc.register(name, fn)
