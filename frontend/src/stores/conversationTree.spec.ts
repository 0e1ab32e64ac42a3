import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { FakeBackend, json, message } from '@/test/fakeBackend'
import type { Message } from '@/api'
import { continuation, useConversationStore } from './conversation'

describe('conversation store, message tree', () => {
  let server: FakeBackend
  let store: ReturnType<typeof useConversationStore>
  const u1 = message({ id: 'u1', role: 'user', content: 'one' })
  const a1 = message({ id: 'a1', content: 'Echo: one', parent_id: 'u1' })
  const u2 = message({ id: 'u2', role: 'user', content: 'two', parent_id: 'a1' })
  const a2 = message({ id: 'a2', content: 'Echo: two', parent_id: 'u2' })
  const ids = () => store.messages.map((m) => m.id)

  beforeEach(async () => {
    setActivePinia(createPinia())
    server = new FakeBackend().route('GET', '/api/chats/c1/messages', () => json([u1, a1, u2, a2])).install()
    server.route('GET', '/api/chats/c1', () => json({ id: 'c1', title: 't' }))
    store = useConversationStore()
    store.open('c1')
    await server.waitForStreams(1)
    await vi.waitFor(() => expect(store.loaded).toBe(true))
  })
  afterEach(() => store.close())

  it('an edit sends the new text after the question\'s parent and shows the new branch', async () => {
    const u3 = message({ id: 'u3', role: 'user', content: 'two, better', parent_id: 'a1', sibling_ids: ['u2', 'u3'] })
    const a3 = message({ id: 'a3', status: 'pending', parent_id: 'u3' })
    server.route('POST', '/api/chats/c1/messages', () => json({ user_message: u3, assistant_message: a3 }, 202))
    expect(await store.edit('u2', 'two, better', 1000)).toBe(true)
    expect(server.calls.find((c) => c.method === 'POST')?.body).toEqual({ content: 'two, better', role: 'user', parent_id: 'a1' })
    expect(ids()).toEqual(['u1', 'a1', 'u3', 'a3'])
    expect(store.activeReply?.id).toBe('a3')
  })

  it('editing the first question sends parent_id null', async () => {
    const u3 = message({ id: 'u3', role: 'user', content: 'uno', sibling_ids: ['u1', 'u3'] })
    const a3 = message({ id: 'a3', status: 'pending', parent_id: 'u3' })
    server.route('POST', '/api/chats/c1/messages', () => json({ user_message: u3, assistant_message: a3 }, 202))
    await store.edit('u1', 'uno', 1000)
    expect(server.calls.find((c) => c.method === 'POST')?.body).toEqual({ content: 'uno', role: 'user', parent_id: null })
    expect(ids()).toEqual(['u3', 'a3'])
  })

  it('regenerating an earlier reply grows a new branch from its question', async () => {
    const again = message({ id: 'a4', status: 'pending', parent_id: 'u1', sibling_ids: ['a1', 'a4'] })
    server.route('POST', '/api/chats/c1/messages/a1/retry', () => json(again, 202))
    await store.retry('a1')
    expect(ids()).toEqual(['u1', 'a4'])
  })

  it('‹ › shows the branch the server answers', async () => {
    const path = [u1, a1, message({ id: 'u3', role: 'user', parent_id: 'a1', sibling_ids: ['u2', 'u3'] })]
    server.route('POST', '/api/chats/c1/active', () => json(path))
    await store.showBranch('u3')
    expect(server.calls.find((c) => c.url.endsWith('/active'))?.body).toEqual({ message_id: 'u3' })
    expect(ids()).toEqual(['u1', 'a1', 'u3'])
  })

  it('a reply finishing on another branch does not appear on this one', async () => {
    const stream = server.streams[0]!
    const elsewhere = message({ id: 'a9', content: 'Echo: one', parent_id: 'u1', sibling_ids: ['a1', 'a9'] })
    stream.send('message.completed', { message: elsewhere })
    const next = message({ id: 'u5', role: 'user', parent_id: 'a2' })
    stream.send('message.completed', { message: next })
    await vi.waitFor(() => expect(ids()).toEqual(['u1', 'a1', 'u2', 'a2', 'u5']))
  })
})

describe('continuation', () => {
  const m = (id: string, parent: string | null, at: number): Message =>
    message({ id, parent_id: parent, created_at: new Date(at).toISOString() })

  it('follows parents from the tip, taking the newest child', () => {
    const chain = continuation('a1', [m('a2', 'u2', 3), m('u2', 'a1', 1), m('u3', 'a1', 2), m('x', 'zz', 4)])
    expect(chain.map((c) => c.id)).toEqual(['u3'])
    expect(continuation(null, [m('a1', 'u1', 2), m('u1', null, 1)]).map((c) => c.id)).toEqual(['u1', 'a1'])
  })
})
