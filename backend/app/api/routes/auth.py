from fastapi import APIRouter, Request, Response, status

from app.api.deps import SESSION_COOKIE, ClientAddress, ContainerDep, CurrentUser
from app.api.schemas import LoginIn, PasswordChange, TokenOut, UserOut
from app.api.schemas_teams import RegisterIn
from app.services import accounts

router = APIRouter(prefix="/auth", tags=["auth"])


def _ended() -> Response:
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def register(body: RegisterIn, c: ContainerDep, address: ClientAddress):
    return await accounts.register(c, body.email, body.password, address, body.invite)


@router.post("/login", response_model=TokenOut)
async def login(
    body: LoginIn, request: Request, response: Response, c: ContainerDep, address: ClientAddress
):
    device = request.headers.get("user-agent")
    token, user = await accounts.login(c, body.email, body.password, address, device)
    set_session_cookie(response, c, token)
    return TokenOut(access_token=token, user=UserOut.model_validate(user))


def set_session_cookie(response: Response, c: ContainerDep, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(c.settings.SESSION_TTL_HOURS * 3600),
        httponly=True,
        samesite="lax",
        secure=c.settings.COOKIE_SECURE,
        path="/",
    )


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: PasswordChange, user: CurrentUser, c: ContainerDep, address: ClientAddress
) -> Response:
    """Sets a new password; every other session of the user ends, this one stays."""
    await accounts.change_password(c, user, body.current_password, body.new_password, address)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(user: CurrentUser, c: ContainerDep) -> Response:
    await accounts.logout(c, user)
    return _ended()


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT)
async def logout_all(user: CurrentUser, c: ContainerDep) -> Response:
    """Ends every session of the user, this one included."""
    await accounts.logout_everywhere(c, user)
    return _ended()


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser):
    return user
