from fastapi import APIRouter

from app.api.deps import AdminUser, ContainerDep
from app.api.schemas import KeyOut
from app.services import keypool

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/keys", response_model=list[KeyOut])
async def get_keys(_: AdminUser, c: ContainerDep):
    return await keypool.key_states(c)
