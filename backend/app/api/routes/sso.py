"""Single sign-on (OpenID Connect): the browser is sent to the identity provider and back."""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from app.api.deps import ContainerDep
from app.api.routes.auth import set_session_cookie
from app.services import accounts, oidc

router = APIRouter(prefix="/auth/oidc", tags=["auth"])

STATE_COOKIE = "chat_oidc_state"
COOKIE_PATH = "/api/auth/oidc"


def _callback_url(request: Request) -> str:
    return str(request.url_for("oidc_callback"))


@router.get("/login", response_class=RedirectResponse, status_code=302)
async def oidc_login(request: Request, c: ContainerDep):
    url, state = await oidc.begin(c, _callback_url(request))
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=oidc.STATE_SECONDS,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back
        secure=c.settings.COOKIE_SECURE,
        path=COOKIE_PATH,
    )
    return response


@router.get("/callback", name="oidc_callback", response_class=RedirectResponse, status_code=303)
async def oidc_callback(
    request: Request, c: ContainerDep, code: str | None = None, state: str | None = None
):
    user = await oidc.finish(c, code, state, request.cookies.get(STATE_COOKIE))
    token = await accounts.start_session(c, user, request.headers.get("user-agent"))
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, c, token)
    response.delete_cookie(STATE_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax")
    return response
