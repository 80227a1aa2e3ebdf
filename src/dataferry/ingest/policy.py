"""Policy validation: built-in rules from the configuration (pure), then an
optional external policy service that must answer ``{"status": "success"}``."""

from __future__ import annotations

from typing import Any

import httpx

from dataferry.config import IngestSettings
from dataferry.errors import TransientError
from dataferry.ingest.metadata import BundleMetadata
from dataferry.ingest.tasks import POLICY, BundleError


def builtin_problems(meta: BundleMetadata, rules: IngestSettings) -> list[str]:
    """Every way ``meta`` breaks the configured rules (empty: accepted)."""
    problems: list[str] = []
    for attr, allowed in (
        ("project", rules.allowed_projects),
        ("instrument", rules.allowed_instruments),
        ("submitter", rules.allowed_submitters),
    ):
        value = getattr(meta, attr)
        if allowed and value is not None and value not in allowed:
            problems.append(f"{attr} {value!r} is not allowed (allowed: {', '.join(allowed)})")
    for name in rules.required_fields:
        if meta.field(name) is None:
            problems.append(f"{name} is required")
    keys = {k for k, _ in meta.key_values}
    for key in rules.required_keys:
        if key not in keys:
            problems.append(f"key {key!r} is required")
    return problems


def ask_policy_service(url: str, document: list[Any], timeout: float) -> None:
    """POST the metadata to ``url``; refuse unless it answers ``{"status": "success"}``."""
    try:
        response = httpx.post(url, json=document, timeout=timeout)
    except httpx.HTTPError as exc:
        raise TransientError(f"policy service {url} could not be reached: {exc}") from exc
    if response.status_code >= 500:
        raise TransientError(f"policy service {url} answered HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    accepted = isinstance(answer, dict) and answer.get("status") == "success"
    if response.status_code == 200 and accepted:
        return
    reason = ""
    if isinstance(answer, dict):
        reason = str(answer.get("message") or answer.get("detail") or answer.get("status") or "")
    reason = reason or response.text[:500]
    raise BundleError(
        POLICY, f"policy service refused the bundle (HTTP {response.status_code}): {reason}"
    )


def validate(meta: BundleMetadata, rules: IngestSettings) -> None:
    """:class:`BundleError` at ``Policy Validation`` unless the policy accepts ``meta``."""
    problems = builtin_problems(meta, rules)
    if problems:
        raise BundleError(POLICY, "policy refused the bundle: " + "; ".join(problems))
    if rules.policy_url:
        ask_policy_service(rules.policy_url, meta.raw, rules.policy_timeout)
