from typing import Literal

from fastapi import APIRouter, Path, Query, Response, status

from app.api.deps import AdminUser, ContainerDep
from app.api.schemas import KeyErrorOut, KeyIn, KeyOut, KeyPatch, PoolOut, SeriesOut
from app.services import keypool, keyregistry
from app.services.errors import NotFound

router = APIRouter(prefix="/admin", tags=["admin"])

KeyId = Path(pattern=r"^[0-9a-f]{8}$", description="the first 8 hex of the key's SHA-256")


async def _one(c: ContainerDep, key_id: str) -> KeyOut:
    for key in await keypool.key_states(c):
        if key.id == key_id:
            return key
    raise NotFound("key not found")


@router.get("/keys", response_model=list[KeyOut])
async def get_keys(_: AdminUser, c: ContainerDep):
    return await keypool.key_states(c)


@router.post("/keys", status_code=status.HTTP_201_CREATED, response_model=KeyOut)
async def add_key(body: KeyIn, _: AdminUser, c: ContainerDep):
    return await _one(c, await keyregistry.add(c, body.key, body.label))


@router.get("/keys/series", response_model=SeriesOut)
async def get_series(
    _: AdminUser,
    c: ContainerDep,
    window: Literal["hour", "day"] = "hour",
    key_id: str | None = Query(None, pattern=r"^[0-9a-f]{8}$"),
):
    return await keypool.series(c, window, key_id)


@router.get("/pool", response_model=PoolOut)
async def get_pool(_: AdminUser, c: ContainerDep):
    return await keypool.pool(c)


@router.patch("/keys/{key_id}", response_model=KeyOut)
async def patch_key(body: KeyPatch, _: AdminUser, c: ContainerDep, key_id: str = KeyId):
    await keyregistry.update(c, key_id, body.label, body.disabled)
    return await _one(c, key_id)


@router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_key(_: AdminUser, c: ContainerDep, key_id: str = KeyId):
    await keyregistry.remove(c, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/keys/{key_id}/errors", response_model=list[KeyErrorOut])
async def get_key_errors(_: AdminUser, c: ContainerDep, key_id: str = KeyId):
    await _one(c, key_id)
    return await keypool.key_errors(c, key_id)
