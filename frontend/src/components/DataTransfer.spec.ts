import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createTestingPinia } from '@pinia/testing'
import { createMemoryHistory, createRouter } from 'vue-router'
import DataTransfer from './DataTransfer.vue'
import { useChatsStore } from '@/stores/chats'

async function mountPanel(answer: Response) {
  const fetch = vi.fn(async () => answer)
  vi.stubGlobal('fetch', fetch)
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [{ path: '/c/:chatId', name: 'chat', component: { template: '<div />' } }, { path: '/', component: { template: '<div />' } }],
  })
  const pinia = createTestingPinia({ createSpy: vi.fn })
  const wrapper = mount(DataTransfer, { global: { plugins: [pinia, router] } })
  const input = wrapper.get('[data-test=import-file]')
  const file = new File(['{}'], 'conversations.json', { type: 'application/json' })
  Object.defineProperty(input.element, 'files', { value: [file] })
  await input.trigger('change')
  await wrapper.get('form').trigger('submit')
  await flushPromises()
  return { wrapper, fetch, chats: useChatsStore(pinia) }
}

const answer = (data: unknown, status: number) =>
  new Response(JSON.stringify(data), { status, headers: { 'Content-Type': 'application/json' } })

afterEach(() => vi.unstubAllGlobals())

describe('DataTransfer', () => {
  it('uploads the file as multipart and lists what was imported', async () => {
    const { wrapper, fetch, chats } = await mountPanel(answer({ imported: 1, chats: [{ id: 'n1', title: 'Trip' }] }, 201))
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/api/import')
    expect((init.body as FormData).get('file')).toBeInstanceOf(File)
    expect(wrapper.get('[data-test=import-result]').text()).toContain('Imported 1 chat')
    expect(wrapper.get('[data-test=import-result] a').attributes('href')).toBe('/c/n1')
    expect(chats.loadFirstPage).toHaveBeenCalled()
  })

  it('shows what the server says is wrong with the file', async () => {
    const { wrapper } = await mountPanel(answer({ detail: 'the file is not JSON: Expecting value at line 1' }, 422))
    expect(wrapper.get('[data-test=import-error]').text()).toBe('the file is not JSON: Expecting value at line 1')
  })

  it('offers the whole account as a download', async () => {
    const { wrapper } = await mountPanel(answer({ imported: 0, chats: [] }, 201))
    const link = wrapper.get('[data-test=export-all]')
    expect(link.attributes('href')).toBe('/api/export')
    expect(link.attributes('download')).toBeDefined()
  })
})
