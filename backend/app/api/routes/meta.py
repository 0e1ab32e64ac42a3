from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import ContainerDep, CurrentUser
from app.api.schemas import ConfigOut, HealthOut, ModelsOut
from app.services import generation, health

router = APIRouter(tags=["meta"])


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def get_health(c: ContainerDep):
    checks = await health.checks(c)
    healthy = all(value == "ok" for value in checks.values())
    body = HealthOut(
        status="healthy" if healthy else "unhealthy", timestamp=datetime.now(UTC), checks=checks
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if healthy else 503)


@router.get("/models", response_model=ModelsOut)
async def get_models(_: CurrentUser, c: ContainerDep):
    ranges = {m: generation.describe(m) for m in c.settings.GEMINI_MODELS}
    return ModelsOut(
        default=c.settings.GEMINI_MODEL, models=c.settings.GEMINI_MODELS, ranges=ranges
    )


@router.get("/config", response_model=ConfigOut)
async def get_config(c: ContainerDep):
    return ConfigOut(
        allow_registration=c.settings.ALLOW_REGISTRATION != "false",
        max_message_chars=c.settings.MAX_MESSAGE_CHARS,
        max_retries=c.settings.QUEUE_MAX_RETRIES,
    )
