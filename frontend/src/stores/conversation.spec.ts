import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { FakeBackend, json, message } from '@/test/fakeBackend'
import type { Message } from '@/api'
import { useConversationStore } from './conversation'

function deferred<T>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

describe('conversation store', () => {
  let server: FakeBackend
  let stored: Message[]
  let store: ReturnType<typeof useConversationStore>

  const user = message({ id: 'u1', role: 'user', content: 'Hi' })
  const reply = (fields: Partial<Message> = {}) => message({ id: 'a1', status: 'pending', ...fields })
  const shown = (id = 'a1') => store.messages.find((m) => m.id === id)

  beforeEach(() => {
    setActivePinia(createPinia())
    stored = [user, reply()]
    server = new FakeBackend().route('GET', '/api/chats/c1/messages', () => json(stored)).install()
    store = useConversationStore()
  })
  afterEach(() => store.close())

  async function openChat() {
    store.open('c1')
    const stream = await server.waitForStreams(1)
    await vi.waitFor(() => expect(store.loaded).toBe(true))
    return stream
  }

  it('opens the event stream first, then loads the messages', async () => {
    await openChat()
    const order = server.calls.map((c) => c.url)
    expect(order[0]).toBe('/api/chats/c1/events')
    expect(order[1]).toBe('/api/chats/c1/messages')
    expect(store.messages.map((m) => m.id)).toEqual(['u1', 'a1'])
    expect(store.activeReply?.id).toBe('a1')
  })

  it('after a reload mid-reply shows the text so far and continues', async () => {
    const stream = await openChat()
    // Without Last-Event-ID the backend replays the current attempt from its start.
    stream.send('message.status', { message_id: 'a1', status: 'streaming', attempt: 0, next_attempt_at: null, error: null }, '1-0')
    stream.send('message.delta', { message_id: 'a1', seq: 0, text: 'Echo: ' }, '2-0')
    stream.send('message.delta', { message_id: 'a1', seq: 1, text: 'Hi' }, '3-0')
    await vi.waitFor(() => expect(shown()?.content).toBe('Echo: Hi'))
    expect(shown()?.status).toBe('streaming')
    stream.send('message.delta', { message_id: 'a1', seq: 2, text: '!' }, '4-0')
    await vi.waitFor(() => expect(shown()?.content).toBe('Echo: Hi!'))
  })

  it('drops deltas it already applied when a reconnect replays them', async () => {
    const first = await openChat()
    first.send('message.status', { message_id: 'a1', status: 'streaming', attempt: 0, next_attempt_at: null, error: null }, '1-0')
    first.send('message.delta', { message_id: 'a1', seq: 0, text: 'one ' }, '2-0')
    first.send('message.delta', { message_id: 'a1', seq: 1, text: 'two ' }, '3-0')
    await vi.waitFor(() => expect(shown()?.content).toBe('one two '))
    first.end()

    const second = await server.waitForStreams(2)
    expect(second.lastEventId).toBe('3-0')
    second.send('message.delta', { message_id: 'a1', seq: 1, text: 'two ' }, '3-0')
    second.send('message.delta', { message_id: 'a1', seq: 2, text: 'three' }, '5-0')
    await vi.waitFor(() => expect(shown()?.content).toBe('one two three'))
  })

  it('clears the text of a failed attempt on message.reset', async () => {
    const stream = await openChat()
    stream.send('message.delta', { message_id: 'a1', seq: 0, text: 'half a rep' })
    stream.send('message.status', { message_id: 'a1', status: 'retrying', attempt: 1, next_attempt_at: '2030-01-01T00:00:00Z', error: null })
    await vi.waitFor(() => expect(shown()?.status).toBe('retrying'))
    expect(shown()?.next_attempt_at).toBe('2030-01-01T00:00:00Z')
    stream.send('message.reset', { message_id: 'a1' })
    stream.send('message.delta', { message_id: 'a1', seq: 0, text: 'Fresh' })
    await vi.waitFor(() => expect(shown()?.content).toBe('Fresh'))
  })

  it('keeps a completion that arrives while an older message list is on its way', async () => {
    const stream = await openChat()
    const slow = deferred<Response>()
    const staleList = [user, reply()]
    server.route('GET', '/api/chats/c1/messages', () => slow.promise)
    void store.load()
    const done = reply({ status: 'completed', content: 'Echo: Hi' })
    stream.send('message.completed', { message: done })
    await vi.waitFor(() => expect(shown()?.status).toBe('completed'))
    slow.resolve(json(staleList))
    await new Promise((r) => setTimeout(r, 20))
    expect(shown()).toMatchObject({ status: 'completed', content: 'Echo: Hi' })
    expect(store.activeReply).toBeNull()
  })

  it('takes a final reply from a later message list over streamed text', async () => {
    const stream = await openChat()
    stream.send('message.delta', { message_id: 'a1', seq: 0, text: 'Echo' })
    await vi.waitFor(() => expect(shown()?.content).toBe('Echo'))
    stored = [user, reply({ status: 'cancelled', content: 'Echo' })]
    await store.load()
    expect(shown()).toMatchObject({ status: 'cancelled', content: 'Echo' })
  })

  it('keeps "streaming" and its text when PostgreSQL still says pending', async () => {
    const stream = await openChat()
    stream.send('message.status', { message_id: 'a1', status: 'streaming', attempt: 0, next_attempt_at: null, error: null })
    stream.send('message.delta', { message_id: 'a1', seq: 0, text: 'Echo' })
    await vi.waitFor(() => expect(shown()?.content).toBe('Echo'))
    await store.load()
    expect(shown()).toMatchObject({ status: 'streaming', content: 'Echo' })
  })

  it('shows a reply waiting for a key as queued, with its place and expected start', async () => {
    const stream = await openChat()
    stream.send('message.status', {
      message_id: 'a1',
      status: 'queued',
      attempt: 0,
      queue_position: 3,
      eta_seconds: 40,
      next_attempt_at: null,
      error: null,
    })
    await vi.waitFor(() => expect(shown()?.status).toBe('queued'))
    const start = shown()?.expected_start_at ?? 0
    expect(shown()?.queue_position).toBe(3)
    expect(start - Date.now()).toBeGreaterThan(38_000)
    expect(start - Date.now()).toBeLessThanOrEqual(40_000)
    // PostgreSQL says pending: a reload keeps the line until the reply starts streaming.
    await store.load()
    expect(shown()?.status).toBe('queued')
    stream.send('message.status', { message_id: 'a1', status: 'streaming', attempt: 0, next_attempt_at: null, error: null })
    await vi.waitFor(() => expect(shown()).toMatchObject({ status: 'streaming', queue_position: null }))
  })

  it('says the key pool is saturated when the send is refused for it', async () => {
    const { describeSendError } = await import('./conversation')
    const { ApiError } = await import('@/api')
    const saturated = new ApiError(429, 'the key pool is saturated: ...', 95)
    expect(describeSendError(saturated, 100)).toBe('Every Gemini key is busy and the queue is full. Try again in 95 s.')
  })

  it('shows the readable error of a failed reply', async () => {
    const stream = await openChat()
    stream.send('message.status', {
      message_id: 'a1',
      status: 'failed',
      attempt: 4,
      next_attempt_at: null,
      error: { code: 'INVALID_ARGUMENT', message: 'The model does not exist.' },
    })
    await vi.waitFor(() => expect(shown()?.status).toBe('failed'))
    expect(shown()?.error).toBe('The model does not exist.')
    expect(store.activeReply).toBeNull()
  })

  it('sends a message and follows events that beat the HTTP answer', async () => {
    stored = [user, reply({ status: 'completed', content: 'Echo: Hi' })]
    const stream = await openChat()
    const answer = deferred<Response>()
    server.route('POST', '/api/chats/c1/messages', () => answer.promise)
    const sending = store.send('Again', 1000)
    stream.send('message.status', { message_id: 'a2', status: 'streaming', attempt: 0, next_attempt_at: null, error: null })
    stream.send('message.delta', { message_id: 'a2', seq: 0, text: 'Echo: Again' })
    await new Promise((r) => setTimeout(r, 20))
    answer.resolve(
      json(
        {
          user_message: message({ id: 'u2', role: 'user', content: 'Again', parent_id: 'a1' }),
          assistant_message: message({ id: 'a2', status: 'pending', parent_id: 'u2' }),
        },
        202,
      ),
    )
    expect(await sending).toBe(true)
    expect(store.messages.map((m) => m.id)).toEqual(['u1', 'a1', 'u2', 'a2'])
    expect(shown('a2')).toMatchObject({ status: 'streaming', content: 'Echo: Again' })
    expect(server.calls.find((c) => c.method === 'POST')?.body).toEqual({ content: 'Again', role: 'user' })
  })

  it.each([
    [409, { detail: 'busy' }, {}, 'A reply is still being written in this chat. Wait for it to finish, or press Stop.'],
    [422, { detail: [{ msg: 'Value error, message is too long (max 100 characters)' }] }, {}, 'message is too long (max 100 characters)'],
    [429, { detail: 'Too many' }, { 'Retry-After': '17' }, 'You are sending messages too quickly. Try again in 17 s.'],
  ])('explains a %i answer to a send', async (status, body, headers, text) => {
    await openChat()
    server.route('POST', '/api/chats/c1/messages', () => json(body, status, headers))
    expect(await store.send('Hello', 100)).toBe(false)
    expect(store.sendError).toBe(text)
  })

  it('retry clears the old text and follows the new attempt', async () => {
    stored = [user, reply({ status: 'failed', content: 'partial', error: 'boom' })]
    const stream = await openChat()
    server.route('POST', '/api/chats/c1/messages/a1/retry', () => json(reply({ status: 'pending', content: '' }), 202))
    await store.retry('a1')
    expect(shown()).toMatchObject({ status: 'pending', content: '' })
    stream.send('message.status', { message_id: 'a1', status: 'streaming', attempt: 0, next_attempt_at: null, error: null })
    stream.send('message.delta', { message_id: 'a1', seq: 0, text: 'New' })
    await vi.waitFor(() => expect(shown()).toMatchObject({ status: 'streaming', content: 'New', error: null }))
  })

  it('stopping a queued reply ends it at once', async () => {
    await openChat()
    server.route('POST', '/api/chats/c1/messages/a1/cancel', () => json(reply({ status: 'cancelled' }), 202))
    await store.cancel('a1')
    expect(shown()?.status).toBe('cancelled')
    expect(store.activeReply).toBeNull()
  })

  it('says so when the chat does not exist', async () => {
    server.streamStatus = 404
    store.open('c1')
    await vi.waitFor(() => expect(store.notFound).toBe(true))
  })

  it('refresh re-reads the messages', async () => {
    await openChat()
    stored = [user, reply({ status: 'completed', content: 'Done' })]
    store.refresh()
    await vi.waitFor(() => expect(shown()).toMatchObject({ status: 'completed', content: 'Done' }))
  })
})
