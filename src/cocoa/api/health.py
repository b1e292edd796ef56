"""Liveness, readiness and metrics. PLACEHOLDER: /metrics filled in by the API work."""

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up (no database check: that is /readyz)."""
    return {"status": "ok"}
