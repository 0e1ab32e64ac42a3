from uuid import UUID

from fastapi import APIRouter

from app.api.deps import CurrentUser, SessionDep
from app.api.schemas import ActiveIn, MessageOut
from app.services import tree

router = APIRouter(prefix="/chats/{chat_id}", tags=["messages"])


@router.post("/active", response_model=list[MessageOut])
async def set_active_branch(chat_id: UUID, body: ActiveIn, user: CurrentUser, db: SessionDep):
    """Show the branch through `message_id`, down to its newest message; answers that path."""
    return await tree.set_active(db, user.id, chat_id, body.message_id)
