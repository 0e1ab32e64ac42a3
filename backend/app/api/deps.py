"""FastAPI dependencies and their aliases."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.container import Container
from app.services import accounts
from app.services.accounts import AuthUser
from app.services.errors import Forbidden, Unauthorized

SESSION_COOKIE = "chat_session"

_bearer = HTTPBearer(auto_error=False, description="the access_token from POST /api/auth/login")


async def get_container(request: Request) -> Container:  # async: no thread-pool hop
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_session(c: ContainerDep) -> AsyncIterator[AsyncSession]:
    async with c.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_current_user(
    request: Request,
    c: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthUser:
    # Uses its own short session: the events stream must not hold a database connection.
    token = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthorized("not logged in")
    return await accounts.authenticate(c, token)


CurrentUser = Annotated[AuthUser, Depends(get_current_user)]


async def get_client_address(request: Request) -> str:
    # uvicorn puts the proxy's X-Forwarded-For here when the proxy is trusted
    # (--forwarded-allow-ips), so clients cannot choose their own address.
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(get_client_address)]


async def get_admin(user: CurrentUser) -> AuthUser:
    if not user.is_admin:
        raise Forbidden("this needs an admin account")
    return user


AdminUser = Annotated[AuthUser, Depends(get_admin)]
