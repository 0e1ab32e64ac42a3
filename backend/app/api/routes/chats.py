from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from app.api.deps import ContainerDep, CurrentUser, SessionDep
from app.api.schemas import ChatIn, ChatOut, ChatPage, ChatPatch
from app.services import chats

router = APIRouter(prefix="/chats", tags=["chats"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ChatOut)
async def create_chat(
    user: CurrentUser, db: SessionDep, c: ContainerDep, body: ChatIn | None = None
):
    body = body or ChatIn()
    settings = body.settings.model_dump(exclude_none=True) if body.settings else None
    chat = await chats.create(db, c, user.id, body.title, body.model, body.system_prompt, settings)
    return chats.out(c, chat)


@router.get("", response_model=ChatPage)
async def list_chats(
    user: CurrentUser,
    db: SessionDep,
    c: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    before: Annotated[
        str | None, Query(max_length=200, description="`next` of the previous page")
    ] = None,
):
    items, next_cursor = await chats.list_page(db, user.id, limit, before)
    return ChatPage(items=[chats.out(c, chat) for chat in items], next=next_cursor)


@router.get("/{chat_id}", response_model=ChatOut)
async def get_chat(chat_id: UUID, user: CurrentUser, db: SessionDep, c: ContainerDep):
    return chats.out(c, await chats.get_owned(db, user.id, chat_id))


@router.patch("/{chat_id}", response_model=ChatOut)
async def patch_chat(
    chat_id: UUID, body: ChatPatch, user: CurrentUser, db: SessionDep, c: ContainerDep
):
    chat = await chats.update(db, c, user.id, chat_id, body.model_dump(exclude_unset=True))
    return chats.out(c, chat)


@router.delete("/{chat_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_chat(
    chat_id: UUID, user: CurrentUser, db: SessionDep, c: ContainerDep
) -> Response:
    await chats.remove(db, c, user.id, chat_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
