import { defineStore } from 'pinia'
import { computed, ref, watch } from 'vue'
import {
  api,
  ApiError,
  describeDetail,
  eventsUrl,
  isFinal,
  NetworkError,
  notifyUnauthorized,
  type CompletedEvent,
  type DeltaEvent,
  type Message,
  type MessageStatus,
  type ResetEvent,
  type StatusEvent,
  type ChatTitleEvent,
  type ThoughtEvent,
} from '@/api'
import { openEventStream, type SseFrame, type StreamHandle, type StreamState } from '@/api/sse'
import { useChatsStore } from './chats'
import { dailyLimitOf, quotaText } from '@/lib/usage'

/**
 * What the event stream (or an HTTP answer) told us about a message beyond the last
 * `GET /messages` snapshot. `tick` orders it against snapshots: an overlay written after a
 * load began survives that load; an older one yields to it (CONTRACTS.md "Event stream").
 */
interface Overlay {
  message?: Message
  status?: MessageStatus
  /** Text streamed in the current attempt; null: use the message's stored content. */
  text: string | null
  /** The next delta seq expected; a lower one is a replayed duplicate. */
  nextSeq: number
  /** Thoughts streamed in the current attempt (`message.thought`), with their own seq. */
  thoughts?: string | null
  nextThoughtSeq?: number
  attempt?: number
  nextAttemptAt?: string | null
  error?: string | null
  queuePosition?: number | null
  /** Epoch ms: when the event arrived plus its `eta_seconds`. */
  expectedStartAt?: number | null
  tick: number
}

export type ConnectionState = StreamState | 'idle'

/**
 * The messages known only from events and answers that continue the branch ending at `tip`:
 * each follows the one before it (the newest, should two share a parent). A message of another
 * branch (one still being answered after a switch) is not shown.
 */
export function continuation(tip: string | null, extra: Message[]): Message[] {
  const children = new Map<string | null, Message[]>()
  for (const m of extra) children.set(m.parent_id, [...(children.get(m.parent_id) ?? []), m])
  const chain: Message[] = []
  for (let next = children.get(tip); next?.length; next = children.get(chain.at(-1)!.id)) {
    chain.push(next.reduce((a, b) => (b.created_at > a.created_at ? b : a)))
  }
  return chain
}

/** How often a chat with a reply in progress re-reads its messages, whatever the stream says. */
const SAFETY_POLL_MS = 20_000
/** Load the messages anyway if the stream has not opened by then. */
const FIRST_LOAD_FALLBACK_MS = 1_500

export function errorText(error: StatusEvent['error']): string | null {
  if (error === null || error === undefined) return null
  if (typeof error === 'string') return error
  return error.message ?? error.code ?? 'The reply failed.'
}

export function describeSendError(err: unknown, maxChars: number): string {
  if (err instanceof ApiError) {
    switch (err.status) {
      case 409:
        return 'A reply is still being written in this chat. Wait for it to finish, or press Stop.'
      case 422:
        return describeDetail(err.detail) || `A message must not be empty or longer than ${maxChars} characters.`
      case 429:
        if (dailyLimitOf(err)) return quotaText(err)
        if (describeDetail(err.detail).includes('saturated'))
          return err.retryAfter !== null
            ? `Every Gemini key is busy and the queue is full. Try again in ${err.retryAfter} s.`
            : 'Every Gemini key is busy and the queue is full. Try again in a minute.'
        return err.retryAfter !== null
          ? `You are sending messages too quickly. Try again in ${err.retryAfter} s.`
          : 'You are sending messages too quickly. Wait a moment and try again.'
      case 404:
        if (describeDetail(err.detail).startsWith('attachments')) return describeDetail(err.detail)
        return 'This chat no longer exists.'
      case 413:
        return `Too large: ${describeDetail(err.detail)}.`
    }
    return err.message
  }
  if (err instanceof NetworkError) return 'Not sent: cannot reach the server. Check your connection and try again.'
  return (err as Error).message || 'Something went wrong.'
}

export const useConversationStore = defineStore('conversation', () => {
  const chatId = ref<string | null>(null)
  const snapshots = ref<Message[]>([])
  const overlays = ref<Record<string, Overlay>>({})
  const loaded = ref(false)
  const loadError = ref<string | null>(null)
  const notFound = ref(false)
  const connection = ref<ConnectionState>('idle')
  const sending = ref(false)
  const sendError = ref<string | null>(null)
  const actionError = ref<string | null>(null)
  /** Unsent composer text per chat ('' = the new-chat page), kept across chat switches. */
  const drafts = ref<Record<string, string>>({})

  let tick = 0
  let loadGeneration = 0
  let stream: StreamHandle | null = null
  let streamGeneration = 0
  let fallbackTimer: ReturnType<typeof setTimeout> | undefined
  let pollTimer: ReturnType<typeof setInterval> | undefined

  function view(base: Message, overlay: Overlay | undefined): Message {
    if (!overlay) return base
    const message = overlay.message ?? base
    return {
      ...message,
      status: overlay.status ?? message.status,
      content: overlay.text ?? message.content,
      thoughts: overlay.thoughts ?? message.thoughts ?? null,
      attempt: overlay.attempt ?? message.attempt,
      error: overlay.error !== undefined ? overlay.error : message.error,
      next_attempt_at: overlay.nextAttemptAt !== undefined ? overlay.nextAttemptAt : (message.next_attempt_at ?? null),
      queue_position: overlay.status === 'queued' ? (overlay.queuePosition ?? null) : null,
      expected_start_at: overlay.status === 'queued' ? (overlay.expectedStartAt ?? null) : null,
    }
  }

  const messages = computed<Message[]>(() => {
    const known = new Set(snapshots.value.map((m) => m.id))
    const list = snapshots.value.map((m) => view(m, overlays.value[m.id]))
    const extra = Object.values(overlays.value)
      .filter((o): o is Overlay & { message: Message } => !!o.message && !known.has(o.message.id))
      .map((o) => view(o.message, o))
    return list.concat(continuation(list.at(-1)?.id ?? null, extra))
  })

  /** Drops the shown messages after `parentId` (null: all of them), and what we knew of them:
   * an edit or a regenerate grows a new branch there. */
  function cutAfter(parentId: string | null): void {
    const shown = messages.value
    const keep = parentId === null ? 0 : shown.findIndex((m) => m.id === parentId) + 1
    const kept = new Set(shown.slice(0, keep).map((m) => m.id))
    const dropped = shown.slice(keep).map((m) => m.id)
    snapshots.value = snapshots.value.filter((m) => kept.has(m.id))
    for (const id of dropped) delete overlays.value[id]
  }

  /** The reply still being produced, if any: the composer waits for it. */
  const activeReply = computed(() =>
    messages.value.findLast((m) => m.role === 'assistant' && !isFinal(m.status)) ?? null,
  )

  function overlayFor(messageId: string): Overlay {
    let overlay = overlays.value[messageId]
    if (!overlay) {
      overlay = { text: null, nextSeq: 0, tick: 0 }
      overlays.value[messageId] = overlay
    }
    overlay.tick = ++tick
    return overlay
  }

  function applyDelta(data: DeltaEvent): void {
    const overlay = overlayFor(data.message_id)
    if (data.seq < overlay.nextSeq) return
    overlay.text = (overlay.text ?? '') + data.text
    overlay.nextSeq = data.seq + 1
    if (!overlay.status || !isFinal(overlay.status)) overlay.status = 'streaming'
  }

  function applyStatus(data: StatusEvent): void {
    const overlay = overlayFor(data.message_id)
    overlay.status = data.status
    overlay.attempt = data.attempt
    overlay.nextAttemptAt = data.next_attempt_at
    overlay.error = errorText(data.error)
    overlay.queuePosition = data.queue_position ?? null
    overlay.expectedStartAt = typeof data.eta_seconds === 'number' ? Date.now() + data.eta_seconds * 1000 : null
    // Each attempt (and each retry or regenerate) streams its text from seq 0.
    if (data.status === 'streaming' || data.status === 'pending') {
      overlay.text = ''
      overlay.nextSeq = 0
      forgetThoughts(overlay)
    }
  }

  function applyReset(data: ResetEvent): void {
    const overlay = overlayFor(data.message_id)
    overlay.text = ''
    overlay.nextSeq = 0
    forgetThoughts(overlay)
  }

  function forgetThoughts(overlay: Overlay): void {
    overlay.thoughts = ''
    overlay.nextThoughtSeq = 0
  }

  function applyThought(data: ThoughtEvent): void {
    const overlay = overlayFor(data.message_id)
    if (data.seq < (overlay.nextThoughtSeq ?? 0)) return
    overlay.thoughts = (overlay.thoughts ?? '') + data.text
    overlay.nextThoughtSeq = data.seq + 1
    if (!overlay.status || !isFinal(overlay.status)) overlay.status = 'streaming'
  }

  function applyCompleted(data: CompletedEvent): void {
    const overlay = overlayFor(data.message.id)
    overlay.message = data.message
    overlay.status = undefined
    overlay.text = null
    overlay.thoughts = null
    overlay.attempt = undefined
    overlay.error = undefined
    overlay.nextAttemptAt = undefined
  }

  function applyFrame(frame: SseFrame): void {
    let data: unknown
    try {
      data = JSON.parse(frame.data)
    } catch {
      return
    }
    switch (frame.event) {
      case 'message.delta':
        return applyDelta(data as DeltaEvent)
      case 'message.status':
        return applyStatus(data as StatusEvent)
      case 'message.reset':
        return applyReset(data as ResetEvent)
      case 'message.completed':
        return applyCompleted(data as CompletedEvent)
      case 'message.thought':
        return applyThought(data as ThoughtEvent)
      case 'chat.title':
        return useChatsStore().rename((data as ChatTitleEvent).chat_id, (data as ChatTitleEvent).title)
    }
  }

  /** Takes a message from an HTTP answer (send, retry) sent when `tick` was `sentAt`. */
  function absorb(message: Message, sentAt: number): void {
    const existing = overlays.value[message.id]
    const newerEvents = existing !== undefined && existing.tick > sentAt
    const overlay = overlayFor(message.id)
    overlay.message = message
    if (!newerEvents) {
      overlay.status = undefined
      overlay.text = null
      overlay.thoughts = null
      overlay.nextSeq = 0
      overlay.attempt = undefined
      overlay.error = undefined
      overlay.nextAttemptAt = undefined
    }
  }

  function reconcile(list: Message[], startedAt: number): void {
    const fresh = new Map(list.map((m) => [m.id, m]))
    for (const [id, overlay] of Object.entries(overlays.value)) {
      if (overlay.tick > startedAt) continue
      const stored = fresh.get(id)
      if (!stored || isFinal(stored.status)) {
        delete overlays.value[id]
        continue
      }
      // The snapshot is newer; keep only what PostgreSQL cannot know: the text streamed so far
      // and that the current attempt is streaming or waiting for a key (both stored as `pending`).
      overlay.message = undefined
      const live = overlay.status === 'streaming' || overlay.status === 'queued'
      if (!(live && stored.status === 'pending')) overlay.status = undefined
      overlay.attempt = undefined
      overlay.error = undefined
      if (stored.status !== 'retrying') overlay.nextAttemptAt = undefined
    }
    snapshots.value = list
  }

  async function load(): Promise<void> {
    const id = chatId.value
    if (!id) return
    const startedAt = tick
    const generation = ++loadGeneration
    try {
      const list = await api.messages(id)
      if (id !== chatId.value || generation !== loadGeneration) return
      reconcile(list, startedAt)
      loaded.value = true
      loadError.value = null
    } catch (err) {
      if (id !== chatId.value || generation !== loadGeneration) return
      if (err instanceof ApiError && err.status === 404) notFound.value = true
      else loadError.value = (err as Error).message
    }
  }

  function open(id: string): void {
    if (chatId.value === id && stream) return
    close()
    chatId.value = id
    const generation = ++streamGeneration
    const current = () => generation === streamGeneration
    stream = openEventStream({
      url: eventsUrl(id),
      onFrame: (frame) => {
        if (current()) applyFrame(frame)
      },
      onOpen: () => {
        if (current()) void load()
      },
      onState: (state) => {
        if (current()) connection.value = state
      },
      onFatal: (status) => {
        if (!current()) return
        if (status === 401) notifyUnauthorized()
        else if (status === 404) notFound.value = true
      },
    })
    fallbackTimer = setTimeout(() => {
      if (!loaded.value) void load()
    }, FIRST_LOAD_FALLBACK_MS)
  }

  /** A chat created in this tab: nothing to load, but follow its stream from now on. */
  function openNew(id: string): void {
    open(id)
    loaded.value = true
  }

  function close(): void {
    streamGeneration++
    stream?.close()
    stream = null
    clearTimeout(fallbackTimer)
    chatId.value = null
    snapshots.value = []
    overlays.value = {}
    loaded.value = false
    loadError.value = null
    notFound.value = false
    connection.value = 'idle'
    sendError.value = null
    actionError.value = null
    loadGeneration++
  }

  /** Tab visible again or network back: reconnect at once and re-read the messages. */
  function refresh(): void {
    if (!chatId.value) return
    stream?.reconnectNow()
    void load()
  }

  async function send(content: string, maxChars: number, attachments: string[] = []): Promise<boolean> {
    const id = chatId.value
    if (!id) return false
    sending.value = true
    sendError.value = null
    const sentAt = tick
    try {
      const answer = await api.send(id, content, attachments)
      if (id !== chatId.value) return true
      absorb(answer.user_message, sentAt)
      absorb(answer.assistant_message, sentAt)
      void useChatsStore().refreshChat(id)
      return true
    } catch (err) {
      if (id === chatId.value) sendError.value = describeSendError(err, maxChars)
      return false
    } finally {
      sending.value = false
    }
  }

  /** Sends `content` in place of the question `messageId`: a sibling of it, with a new reply. */
  async function edit(messageId: string, content: string, maxChars: number): Promise<boolean> {
    const id = chatId.value
    const question = messages.value.find((m) => m.id === messageId)
    if (!id || !question) return false
    sending.value = true
    sendError.value = null
    const sentAt = tick
    try {
      const answer = await api.sendAfter(id, content, question.parent_id)
      if (id !== chatId.value) return true
      cutAfter(question.parent_id)
      absorb(answer.user_message, sentAt)
      absorb(answer.assistant_message, sentAt)
      void useChatsStore().refreshChat(id)
      return true
    } catch (err) {
      if (id === chatId.value) sendError.value = describeSendError(err, maxChars)
      return false
    } finally {
      sending.value = false
    }
  }

  /** Shows the branch through `messageId` (a sibling picked with ‹ ›), down to its newest leaf. */
  async function showBranch(messageId: string): Promise<void> {
    const id = chatId.value
    if (!id) return
    actionError.value = null
    const startedAt = tick
    const generation = ++loadGeneration
    try {
      const list = await api.setActive(id, messageId)
      if (id !== chatId.value || generation !== loadGeneration) return
      reconcile(list, startedAt)
    } catch (err) {
      if (id === chatId.value) actionError.value = `Could not show that version: ${(err as Error).message}`
    }
  }

  async function cancel(messageId: string): Promise<void> {
    const id = chatId.value
    if (!id) return
    actionError.value = null
    try {
      const message = await api.cancel(id, messageId)
      if (id !== chatId.value) return
      const overlay = overlayFor(message.id)
      overlay.message = message
      // A reply being streamed stays so until the worker stops; a queued one ends at once.
      if (isFinal(message.status)) overlay.status = message.status
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) void load()
      else if (id === chatId.value) actionError.value = `Could not stop the reply: ${(err as Error).message}`
    }
  }

  async function retry(messageId: string): Promise<void> {
    const id = chatId.value
    if (!id) return
    actionError.value = null
    const sentAt = tick
    try {
      const message = await api.retry(id, messageId)
      if (id !== chatId.value) return
      // A completed reply is regenerated as a new sibling: the branch grows from its question.
      if (message.id !== messageId) cutAfter(message.parent_id)
      absorb(message, sentAt)
      void useChatsStore().refreshChat(id)
    } catch (err) {
      if (id !== chatId.value) return
      // A 409 here says why (a reply is already running in this chat).
      actionError.value = err instanceof ApiError && err.status === 409 ? `Cannot retry: ${err.message}.` : describeSendError(err, 0)
    }
  }

  // A safety net under the stream: while a reply runs, re-read the messages now and then, so
  // the screen converges on what PostgreSQL holds even if an event were lost.
  watch(
    () => activeReply.value !== null,
    (busy) => {
      clearInterval(pollTimer)
      if (busy) pollTimer = setInterval(() => void load(), SAFETY_POLL_MS)
    },
  )

  return {
    chatId,
    messages,
    loaded,
    loadError,
    notFound,
    connection,
    sending,
    sendError,
    actionError,
    drafts,
    activeReply,
    open,
    openNew,
    close,
    load,
    refresh,
    send,
    cancel,
    retry,
    edit,
    showBranch,
    applyFrame,
  }
})
