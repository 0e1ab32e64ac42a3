"""Usage: the signed-in user's own (`/usage`) and everyone's for admins (`/admin/usage`)."""

from fastapi import APIRouter, Query

from app.api.deps import AdminUser, CurrentUser, SessionDep
from app.api.schemas import AdminUsageOut, UsageOut
from app.services import usage

router = APIRouter(tags=["usage"])

Days = Query(30, ge=1, le=366, description="UTC days back, today included")


@router.get("/usage", response_model=UsageOut)
async def own_usage(user: CurrentUser, db: SessionDep, days: int = Days):
    return await usage.own(db, user.id, days)


@router.get("/admin/usage", response_model=AdminUsageOut)
async def everyones_usage(
    _: AdminUser, db: SessionDep, days: int = Days, group_by: usage.GroupBy = "model"
):
    return await usage.everyone(db, days, group_by)
