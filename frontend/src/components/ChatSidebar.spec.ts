import { describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createTestingPinia } from '@pinia/testing'
import { createMemoryHistory, createRouter } from 'vue-router'
import ChatSidebar from './ChatSidebar.vue'
import { useChatsStore } from '@/stores/chats'
import type { Chat } from '@/api'

const chat = (id: string, title: string): Chat => ({
  id,
  title,
  model: 'gemini-2.5-flash',
  model_in_use: 'gemini-2.5-flash',
  system_prompt: null,
  created_at: '2030-01-01T00:00:00Z',
  updated_at: '2030-01-01T00:00:00Z',
})

async function mountSidebar(items: Chat[], state: Record<string, unknown> = {}) {
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/', name: 'new', component: { template: '<div />' } },
      { path: '/c/:chatId', name: 'chat', component: { template: '<div />' } },
      { path: '/admin', name: 'admin', component: { template: '<div />' } },
      { path: '/account', name: 'account', component: { template: '<div />' } },
      { path: '/usage', name: 'usage', component: { template: '<div />' } },
      { path: '/admin/usage', name: 'admin-usage', component: { template: '<div />' } },
      { path: '/signin', name: 'signin', component: { template: '<div />' } },
    ],
  })
  await router.push('/c/b')
  const pinia = createTestingPinia({
    createSpy: vi.fn,
    initialState: {
      chats: { items, loaded: true, next: null, ...state },
      auth: { user: { id: 'u', email: 'ada@example.com', is_admin: false, created_at: '' }, checked: true },
    },
  })
  const wrapper = mount(ChatSidebar, { global: { plugins: [pinia, router] }, attachTo: document.body })
  return { wrapper, chats: useChatsStore(pinia), router }
}

describe('ChatSidebar', () => {
  it('lists chats in the given order and marks the open one', async () => {
    const { wrapper } = await mountSidebar([chat('a', 'Alpha'), chat('b', 'Beta')])
    const items = wrapper.findAll('[data-test=chat-item]')
    expect(items.map((i) => i.text().replace(/[✎🗑]/gu, '').trim())).toEqual(['Alpha', 'Beta'])
    expect(items[1]?.classes()).toContain('active')
    wrapper.unmount()
  })

  it('renames inline: submitting saves the new title', async () => {
    const { wrapper, chats } = await mountSidebar([chat('a', 'Alpha')])
    await wrapper.get('[data-test=rename]').trigger('click')
    const input = wrapper.get('[data-test=rename-input]')
    await input.setValue('Project notes')
    await wrapper.get('form.rename').trigger('submit')
    expect(chats.update).toHaveBeenCalledWith('a', { title: 'Project notes' })
    wrapper.unmount()
  })

  it('Escape abandons a rename', async () => {
    const { wrapper, chats } = await mountSidebar([chat('a', 'Alpha')])
    await wrapper.get('[data-test=rename]').trigger('click')
    await wrapper.get('[data-test=rename-input]').setValue('Nope')
    await wrapper.get('[data-test=rename-input]').trigger('keydown', { key: 'Escape' })
    expect(chats.update).not.toHaveBeenCalled()
    expect(wrapper.find('[data-test=rename-input]').exists()).toBe(false)
    wrapper.unmount()
  })

  it('deletes only after confirmation', async () => {
    const { wrapper, chats, router } = await mountSidebar([chat('a', 'Alpha'), chat('b', 'Beta')])
    await wrapper.findAll('[data-test=delete]')[1]?.trigger('click')
    expect(chats.remove).not.toHaveBeenCalled()
    const dialog = document.body.querySelector('[role=alertdialog]')
    expect(dialog?.textContent).toContain('“Beta” and all its messages will be deleted')
    ;(document.body.querySelector('[data-test=confirm]') as HTMLButtonElement).click()
    await flushPromises()
    expect(chats.remove).toHaveBeenCalledWith('b')
    // The open chat was deleted: back to a new chat.
    expect(router.currentRoute.value.name).toBe('new')
    wrapper.unmount()
  })

  it('says when there are no chats yet', async () => {
    const { wrapper } = await mountSidebar([])
    expect(wrapper.text()).toContain('No chats yet')
    wrapper.unmount()
  })
})
