"""The settings page's account calls, password reset links and the sign-in options."""

from uuid import UUID

from fastapi import APIRouter, Response, status

from app.api.deps import SESSION_COOKIE, ContainerDep, CurrentUser
from app.api.schemas_teams import AuthOptions, DeleteMe, ResetIn, SessionOut
from app.services import my_account, teams

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get("/options", response_model=AuthOptions)
async def options(c: ContainerDep):
    """What the sign-in page offers: sign-up mode, password sign-in, single sign-on."""
    s = c.settings
    return AuthOptions(
        registration=s.ALLOW_REGISTRATION, password_login=s.PASSWORD_LOGIN, sso=bool(s.OIDC_ISSUER)
    )


@router.get("/sessions", response_model=list[SessionOut])
async def sessions(user: CurrentUser, c: ContainerDep):
    return [
        SessionOut(
            id=s.id,
            device=s.device,
            created_at=s.created_at,
            last_seen_at=s.last_seen_at,
            current=s.token_hash == user.token_digest,
        )
        for s in await my_account.sessions(c, user)
    ]


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke(session_id: UUID, user: CurrentUser, c: ContainerDep) -> Response:
    await my_account.revoke(c, user, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT)
async def delete_me(body: DeleteMe, user: CurrentUser, c: ContainerDep) -> Response:
    """Deletes the account with its chats; the session ends."""
    await my_account.delete_me(c, user, body.password)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.post("/reset", status_code=status.HTTP_204_NO_CONTENT)
async def reset(body: ResetIn, c: ContainerDep) -> Response:
    """Spends an admin's one-time reset link: sets the password, ends every session."""
    await teams.reset_password(c, body.token, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
