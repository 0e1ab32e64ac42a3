import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createMemoryHistory, createRouter } from 'vue-router'
import SearchBox from './SearchBox.vue'
import { FakeBackend } from '@/test/fakeBackend'

const hit = {
  chat_id: 'c1',
  chat_title: 'Cluster notes',
  message_id: 'm7',
  role: 'assistant',
  snippet: 'Use kubectl drain <first>',
  highlights: [[4, 11]],
  created_at: '2030-01-01T00:00:00Z',
}

async function mountBox() {
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/', name: 'new', component: { template: '<div />' } },
      { path: '/c/:chatId', name: 'chat', component: { template: '<div />' } },
    ],
  })
  await router.push('/')
  const wrapper = mount(SearchBox, { global: { plugins: [router] }, attachTo: document.body })
  return { wrapper, router }
}

afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

describe('SearchBox', () => {
  it('searches once the typing pauses, and marks the highlights up as text', async () => {
    vi.useFakeTimers()
    const backend = new FakeBackend().route('GET', '/api/search', { items: [hit], next: null }).install()
    const { wrapper } = await mountBox()
    const input = wrapper.get('[data-test=search-input]')
    await input.setValue('kub')
    await input.setValue('kubectl')
    expect(backend.calls).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(300)
    await flushPromises()
    expect(backend.calls.map((c) => c.url)).toEqual(['/api/search?q=kubectl&limit=20'])
    const result = wrapper.get('[data-test=search-hit]')
    expect(result.get('mark').text()).toBe('kubectl')
    expect(result.text()).toContain('<first>') // the snippet's own text, never parsed as HTML
    expect(result.find('first').exists()).toBe(false)
    wrapper.unmount()
  })

  it('Enter opens the chat at the message', async () => {
    vi.useFakeTimers()
    new FakeBackend().route('GET', '/api/search', { items: [hit], next: null }).install()
    const { wrapper, router } = await mountBox()
    const input = wrapper.get('[data-test=search-input]')
    await input.setValue('kubectl')
    await vi.advanceTimersByTimeAsync(300)
    await flushPromises()
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(router.currentRoute.value.fullPath).toBe('/c/c1?m=m7')
    expect(wrapper.emitted('opened')).toHaveLength(1)
    wrapper.unmount()
  })

  it('says so when nothing matches, and Ctrl+K focuses the box', async () => {
    vi.useFakeTimers()
    new FakeBackend().route('GET', '/api/search', { items: [], next: null }).install()
    const { wrapper } = await mountBox()
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'k', ctrlKey: true }))
    expect(document.activeElement).toBe(wrapper.get('[data-test=search-input]').element)
    await wrapper.get('[data-test=search-input]').setValue('zebra')
    await vi.advanceTimersByTimeAsync(300)
    await flushPromises()
    expect(wrapper.get('[data-test=search-empty]').text()).toBe('No matches.')
    wrapper.unmount()
  })
})
