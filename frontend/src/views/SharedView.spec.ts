import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createMemoryHistory, createRouter } from 'vue-router'
import SharedView from './SharedView.vue'
import { FakeBackend } from '@/test/fakeBackend'

async function mountView(token: string) {
  const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/', component: { template: '<div />' } }] })
  const wrapper = mount(SharedView, { props: { token }, global: { plugins: [router] } })
  await flushPromises()
  return wrapper
}

afterEach(() => vi.unstubAllGlobals())

describe('SharedView', () => {
  it('shows the shared conversation read-only', async () => {
    new FakeBackend()
      .route('GET', '/api/shared/tok', {
        title: 'Trip',
        shared_at: '2030-01-01T00:00:00Z',
        messages: [
          { role: 'user', content: 'Where to?', created_at: '2030-01-01T00:00:00Z' },
          { role: 'assistant', content: 'Try **Porto**.', created_at: '2030-01-01T00:00:01Z' },
        ],
      })
      .install()
    const wrapper = await mountView('tok')
    expect(wrapper.get('[data-test=shared-title]').text()).toBe('Trip')
    expect(wrapper.get('[data-test=shared-user]').text()).toBe('Where to?')
    expect(wrapper.get('[data-test=shared-assistant] strong').text()).toBe('Porto')
    expect(wrapper.find('textarea').exists()).toBe(false)
  })

  it('says when a link was revoked or never existed', async () => {
    new FakeBackend().install()
    const wrapper = await mountView('gone')
    expect(wrapper.get('[data-test=shared-missing]').text()).toContain('This link does not work')
  })
})
