from fastapi import APIRouter, Response, status

from app.api.deps import SESSION_COOKIE, ContainerDep, CurrentUser, SessionDep
from app.api.schemas import Credentials, LoginIn, TokenOut, UserOut
from app.services import accounts

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def register(body: Credentials, db: SessionDep, c: ContainerDep):
    return await accounts.register(db, c, body.email, body.password)


@router.post("/login", response_model=TokenOut)
async def login(body: LoginIn, response: Response, db: SessionDep, c: ContainerDep):
    token, user = await accounts.login(db, c, body.email, body.password)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(c.settings.SESSION_TTL_HOURS * 3600),
        httponly=True,
        samesite="lax",
        secure=c.settings.COOKIE_SECURE,
        path="/",
    )
    return TokenOut(access_token=token, user=UserOut.model_validate(user))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(user: CurrentUser, db: SessionDep, c: ContainerDep) -> Response:
    await accounts.logout(db, c, user)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser):
    return user
