"""User administration, invites and the audit log (admins only)."""

from datetime import UTC, datetime
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from app.api.deps import AdminUser, ContainerDep, SessionDep
from app.api.schemas_teams import (
    AdminUserOut,
    AdminUsersOut,
    AuditPage,
    InviteCreated,
    InviteIn,
    InviteOut,
    ResetLinkOut,
    UserPatch,
)
from app.services import audit, invites, teams

router = APIRouter(prefix="/admin", tags=["admin"])


def _base(request: Request) -> str:
    # The address the admin's browser used (nginx forwards Host; uvicorn takes the scheme
    # from a trusted proxy's X-Forwarded-Proto).
    return str(request.base_url).rstrip("/")


@router.get("/users", response_model=AdminUsersOut)
async def list_users(
    _: AdminUser,
    db: SessionDep,
    q: str | None = Query(None, max_length=320),
    limit: int = Query(50, ge=1, le=200),
    before: UUID | None = None,
):
    items, more = await teams.list_users(db, q, limit, before)
    return AdminUsersOut(items=items, next=more)


@router.patch("/users/{user_id}", response_model=AdminUserOut)
async def patch_user(body: UserPatch, user_id: UUID, admin: AdminUser, c: ContainerDep):
    limits = body.limits.model_dump(exclude_unset=True) if body.limits is not None else None
    await teams.update_user(c, admin, user_id, body.is_admin, body.disabled, limits)
    async with c.sessionmaker() as db:
        return await teams.one(db, user_id)


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: UUID, admin: AdminUser, c: ContainerDep) -> Response:
    await teams.delete_user(c, admin, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/users/{user_id}/reset-link", status_code=201, response_model=ResetLinkOut)
async def reset_link(user_id: UUID, admin: AdminUser, c: ContainerDep, request: Request):
    token, expires = await teams.reset_link(c, admin, user_id)
    return ResetLinkOut(
        token=token, url=f"{_base(request)}/reset?token={token}", expires_at=expires
    )


@router.post("/invites", status_code=status.HTTP_201_CREATED, response_model=InviteCreated)
async def create_invite(body: InviteIn, admin: AdminUser, c: ContainerDep, request: Request):
    hours = body.expires_hours or c.settings.INVITE_TTL_HOURS
    async with c.sessionmaker() as db:
        invite, token = await invites.create(db, admin.id, body.email, hours)
        audit.record(db, admin, "invite.create", body.email, expires_hours=hours)
        await db.commit()
    return InviteCreated(
        id=invite.id,
        token=token,
        url=invites.link(_base(request), token),
        email=invite.email,
        expires_at=invite.expires_at,
    )


@router.get("/invites", response_model=list[InviteOut])
async def list_invites(_: AdminUser, db: SessionDep):
    now = datetime.now(UTC)
    return [
        InviteOut(
            id=invite.id,
            email=invite.email,
            created_at=invite.created_at,
            expires_at=invite.expires_at,
            used_at=invite.used_at,
            used_by=used_by,
            status="used" if invite.used_at else "expired" if invite.expires_at <= now else "open",
        )
        for invite, used_by in await invites.listing(db)
    ]


@router.delete("/invites/{invite_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_invite(invite_id: UUID, admin: AdminUser, c: ContainerDep) -> Response:
    async with c.sessionmaker() as db:
        gone = await invites.remove(db, invite_id)
        audit.record(db, admin, "invite.delete", gone.email)
        await db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/audit", response_model=AuditPage)
async def get_audit(
    _: AdminUser,
    db: SessionDep,
    limit: int = Query(50, ge=1, le=200),
    before: int | None = Query(None, ge=1),
):
    items, more = await audit.entries(db, limit, before)
    return AuditPage(items=items, next=more)
