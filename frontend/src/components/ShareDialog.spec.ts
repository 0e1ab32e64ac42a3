import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import ShareDialog from './ShareDialog.vue'
import { FakeBackend, json } from '@/test/fakeBackend'

afterEach(() => {
  vi.unstubAllGlobals()
  document.body.innerHTML = ''
})

describe('ShareDialog', () => {
  it('creates a link, shows it once, lists it and revokes it', async () => {
    let links: unknown[] = []
    const created = { id: 's1', token: 'tok', url: 'http://x/s/tok', shared_at: '2030-01-01T00:00:00Z', message_count: 2 }
    const backend = new FakeBackend()
      .route('GET', '/api/chats/c1/share', () => json(links))
      .route('POST', '/api/chats/c1/share', () => {
        links = [{ id: 's1', title: 'T', shared_at: created.shared_at, message_count: 2 }]
        return json(created, 201)
      })
      .route('DELETE', '/api/chats/c1/share/s1', () => {
        links = []
        return json(null, 204)
      })
      .install()
    const wrapper = mount(ShareDialog, { props: { chatId: 'c1', title: 'T' }, attachTo: document.body })
    await flushPromises()
    const dialog = () => document.querySelector('[data-test=share-dialog]') as HTMLElement
    expect(dialog().querySelectorAll('[data-test=share-item]')).toHaveLength(0)
    ;(dialog().querySelector('[data-test=create-share]') as HTMLButtonElement).click()
    await flushPromises()
    expect((dialog().querySelector('[data-test=share-url]') as HTMLInputElement).value).toBe('http://x/s/tok')
    expect(dialog().querySelectorAll('[data-test=share-item]')).toHaveLength(1)
    ;(dialog().querySelector('[data-test=revoke-share]') as HTMLButtonElement).click()
    await flushPromises()
    expect(dialog().querySelector('[data-test=share-url]')).toBeNull()
    expect(dialog().querySelectorAll('[data-test=share-item]')).toHaveLength(0)
    expect(backend.calls.map((c) => `${c.method} ${c.url}`)).toContain('DELETE /api/chats/c1/share/s1')
    wrapper.unmount()
  })
})
