import { beforeEach, describe, expect, it } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { FakeBackend, json } from '@/test/fakeBackend'
import type { Chat } from '@/api'
import { useChatsStore } from './chats'

const chat = (id: string, title = id): Chat => ({
  id,
  title,
  model: 'gemini-2.5-flash',
  model_in_use: 'gemini-2.5-flash',
  system_prompt: null,
  created_at: '2030-01-01T00:00:00Z',
  updated_at: '2030-01-01T00:00:00Z',
})

describe('chats store', () => {
  let server: FakeBackend

  beforeEach(() => {
    setActivePinia(createPinia())
    server = new FakeBackend()
      .route('GET', '/api/chats', (_init: RequestInit, url: string) => {
        const before = new URL(url, 'http://x').searchParams.get('before')
        if (!before) return json({ items: [chat('c'), chat('b')], next: 'cursor-1' })
        // An overlap (a chat that moved meanwhile) must not show twice.
        return json({ items: [chat('b'), chat('a')], next: null })
      })
      .install()
  })

  it('pages through the list as asked, without duplicates, and stops at the end', async () => {
    const chats = useChatsStore()
    await chats.loadFirstPage()
    expect(chats.items.map((c) => c.id)).toEqual(['c', 'b'])
    await chats.loadMore()
    expect(chats.items.map((c) => c.id)).toEqual(['c', 'b', 'a'])
    expect(chats.next).toBeNull()
    const calls = server.calls.length
    await chats.loadMore()
    expect(server.calls.length).toBe(calls)
  })

  it('moves a chat with new activity to the top, with its new title', async () => {
    const chats = useChatsStore()
    await chats.loadFirstPage()
    server.route('GET', '/api/chats/b', chat('b', 'Hello there'))
    await chats.refreshChat('b')
    expect(chats.items.map((c) => [c.id, c.title])).toEqual([
      ['b', 'Hello there'],
      ['c', 'c'],
    ])
  })

  it('renames in place and deletes', async () => {
    const chats = useChatsStore()
    await chats.loadFirstPage()
    server.route('PATCH', '/api/chats/b', chat('b', 'Renamed'))
    server.route('DELETE', '/api/chats/c', () => json(null, 204))
    await chats.update('b', { title: 'Renamed' })
    expect(chats.items.map((c) => c.title)).toEqual(['c', 'Renamed'])
    await chats.remove('c')
    expect(chats.items.map((c) => c.id)).toEqual(['b'])
  })
})
