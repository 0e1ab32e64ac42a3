from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, status

from app.api.deps import ContainerDep, CurrentUser, SessionDep
from app.api.schemas import MessageIn, MessageOut, SendOut
from app.services import messages

router = APIRouter(prefix="/chats/{chat_id}/messages", tags=["messages"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=SendOut)
async def send_message(chat_id: UUID, body: MessageIn, user: CurrentUser, c: ContainerDep):
    # An explicit `parent_id: null` is an edit of the first question; no parent_id follows on.
    parent = body.parent_id if "parent_id" in body.model_fields_set else messages.FOLLOW_ACTIVE_LEAF
    question, reply = await messages.send(
        c, user.id, chat_id, body.content, parent, body.attachments
    )
    return SendOut(
        user_message=MessageOut.model_validate(question),
        assistant_message=MessageOut.model_validate(reply),
    )


@router.get("", response_model=list[MessageOut])
async def list_messages(
    chat_id: UUID,
    user: CurrentUser,
    db: SessionDep,
    view: Annotated[
        Literal["active", "tree"],
        Query(description="`active`: the active branch; `tree`: every message"),
    ] = "active",
):
    return await messages.list_for_chat(db, user.id, chat_id, view)


@router.post(
    "/{message_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=MessageOut
)
async def cancel_message(
    chat_id: UUID, message_id: UUID, user: CurrentUser, db: SessionDep, c: ContainerDep
):
    return await messages.cancel(db, c, user.id, chat_id, message_id)


@router.post("/{message_id}/retry", status_code=status.HTTP_202_ACCEPTED, response_model=MessageOut)
async def retry_message(
    chat_id: UUID, message_id: UUID, user: CurrentUser, db: SessionDep, c: ContainerDep
):
    return await messages.retry(db, c, user.id, chat_id, message_id)
