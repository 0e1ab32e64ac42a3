"""Single sign-on with OpenID Connect (Authlib): authorization code flow with PKCE (S256),
`state` and `nonce`, endpoints and keys from the issuer's discovery document.

The flow's secrets (PKCE verifier, nonce) wait in Redis under the state for STATE_SECONDS;
the state is also set in a cookie on the browser that started the flow, so a callback that
arrives with another browser's (or a forged) state is refused."""

import json
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.integrations.base_client import OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy import select, text

from app.core.container import Container
from app.db.models import User
from app.services import teams
from app.services.accounts import _FIRST_USER_LOCK, SSO_ONLY
from app.services.errors import Conflict, Forbidden, NotFound, Unavailable

with warnings.catch_warnings():
    # Authlib 1.9 warns at import when it finds httpx rather than its httpx2 fork; httpx is
    # the client this project pins, and the warning would be a stray line on stderr.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

log = logging.getLogger(__name__)

STATE_SECONDS = 600
METADATA_SECONDS = 3600
HTTP_TIMEOUT_SECONDS = 10
SCOPE = "openid email profile"
LEEWAY_SECONDS = 60


@dataclass
class _Provider:
    metadata: dict[str, Any]
    jwks: dict[str, Any]
    loaded_at: float


_cache: dict[str, _Provider] = {}  # per process, by issuer


async def _get_json(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
        answer = await http.get(url)
        answer.raise_for_status()
        return answer.json()


async def _provider(issuer: str, fresh_keys: bool = False) -> _Provider:
    known = _cache.get(issuer)
    try:
        if known is None or time.monotonic() - known.loaded_at > METADATA_SECONDS:
            metadata = await _get_json(f"{issuer}/.well-known/openid-configuration")
            if metadata.get("issuer", "").rstrip("/") != issuer:
                raise Unavailable("the identity provider's discovery names another issuer")
            known = _Provider(metadata, await _get_json(metadata["jwks_uri"]), time.monotonic())
        elif fresh_keys:
            known.jwks = await _get_json(known.metadata["jwks_uri"])
    except (httpx.HTTPError, ValueError, KeyError) as error:
        log.warning("identity provider unreachable: %s", error.__class__.__name__)
        raise Unavailable("the identity provider cannot be reached right now") from None
    _cache[issuer] = known
    return known


def _client(c: Container, redirect_uri: str) -> AsyncOAuth2Client:
    s = c.settings
    return AsyncOAuth2Client(
        client_id=s.OIDC_CLIENT_ID,
        client_secret=s.OIDC_CLIENT_SECRET,
        scope=SCOPE,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=HTTP_TIMEOUT_SECONDS,
    )


def _issuer(c: Container) -> str:
    if not c.settings.OIDC_ISSUER:
        raise NotFound("single sign-on is not set up on this server")
    return c.settings.OIDC_ISSUER


async def begin(c: Container, redirect_uri: str) -> tuple[str, str]:
    """The identity provider's sign-in URL and the state to set in the browser's cookie."""
    provider = await _provider(_issuer(c))
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(48)
    async with _client(c, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            provider.metadata["authorization_endpoint"],
            state=state,
            code_verifier=verifier,
            nonce=nonce,
        )
    flow = {"nonce": nonce, "verifier": verifier, "redirect_uri": redirect_uri}
    await c.redis.set(c.keys.oidc_state(state), json.dumps(flow), ex=STATE_SECONDS)
    return url, state


async def _id_token_claims(c: Container, provider: _Provider, token: dict[str, Any], nonce: str):
    if "id_token" not in token:
        raise Forbidden("the identity provider sent no ID token")
    algorithms = provider.metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    registry = JWSRegistry(algorithms=algorithms)
    try:
        try:
            decoded = jwt.decode(
                token["id_token"], KeySet.import_key_set(provider.jwks), registry=registry
            )
        except InvalidKeyIdError:  # the provider rotated its keys
            provider = await _provider(_issuer(c), fresh_keys=True)
            decoded = jwt.decode(
                token["id_token"], KeySet.import_key_set(provider.jwks), registry=registry
            )
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {"iss": {"essential": True, "values": [provider.metadata["issuer"]]}},
            {
                "nonce": nonce,
                "client_id": c.settings.OIDC_CLIENT_ID,
                "access_token": token.get("access_token"),
            },
        )
        claims.validate(leeway=LEEWAY_SECONDS)
    except JoseError as error:
        raise Forbidden(f"the ID token was refused: {error.description or error.error}") from None
    return claims


async def finish(
    c: Container, code: str | None, state: str | None, cookie_state: str | None
) -> User:
    """Checks the callback, exchanges the code (with the PKCE verifier) and returns the
    account it signs in: found by subject, else linked by verified email, else made."""
    if not state or not cookie_state or state != cookie_state:
        raise Forbidden("the sign-in state does not match this browser's; start the sign-in again")
    raw = await c.redis.getdel(c.keys.oidc_state(state))
    if raw is None:
        raise Forbidden("the sign-in state is unknown or expired; start the sign-in again")
    if not code:
        raise Forbidden("the identity provider sent no authorization code")
    flow = json.loads(raw)
    provider = await _provider(_issuer(c))
    async with _client(c, flow["redirect_uri"]) as client:
        try:
            token = await client.fetch_token(
                provider.metadata["token_endpoint"], code=code, code_verifier=flow["verifier"]
            )
        except OAuthError as error:
            raise Forbidden(f"the identity provider refused the code: {error.error}") from None
        except (httpx.HTTPError, ValueError):
            raise Unavailable("the identity provider cannot be reached right now") from None
    claims = await _id_token_claims(c, provider, dict(token), flow["nonce"])
    return await _account(c, claims)


async def _account(c: Container, claims: Any) -> User:
    subject = f"{claims['iss']}|{claims['sub']}"
    email = (claims.get("email") or "").strip().lower()
    verified = claims.get("email_verified") is True
    groups = claims.get("groups") or []
    admin_groups = set(c.settings.OIDC_ADMIN_GROUPS)
    in_admin_group = bool(admin_groups & set(groups if isinstance(groups, list) else [groups]))
    async with c.sessionmaker() as db:
        await db.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _FIRST_USER_LOCK})
        user = (
            await db.execute(select(User).where(User.oidc_subject == subject))
        ).scalar_one_or_none()
        if user is None:
            if not email or not verified:
                raise Forbidden(
                    "the identity provider has not verified this account's email address"
                )
            user = (await db.execute(select(User).where(User.email == email))).scalar_one_or_none()
            if user is not None:
                if user.oidc_subject is not None:
                    raise Forbidden("this email is linked to another single sign-on account")
                user.oidc_subject = subject
            else:
                has_users = (await db.execute(select(User.id).limit(1))).first() is not None
                user = User(
                    email=email,
                    password_hash=SSO_ONLY,
                    is_admin=in_admin_group or not has_users,
                    oidc_subject=subject,
                )
                db.add(user)
        if admin_groups and user.is_admin != in_admin_group and user.id is not None:
            if in_admin_group:
                user.is_admin = True
            else:
                try:
                    await teams.keep_an_admin(db, user.id)
                    user.is_admin = False
                except Conflict:
                    log.warning("kept the last admin's rights although SSO groups dropped them")
        await db.commit()
    return user
