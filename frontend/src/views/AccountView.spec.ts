import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createTestingPinia } from '@pinia/testing'
import { createMemoryHistory, createRouter } from 'vue-router'
import AccountView from './AccountView.vue'
import { ApiError } from '@/api'
import { useAuthStore } from '@/stores/auth'
import { useChatsStore } from '@/stores/chats'

async function mountAccount() {
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/account', name: 'account', component: { template: '<div />' } },
      { path: '/signin', name: 'signin', component: { template: '<div />' } },
    ],
  })
  await router.push('/account')
  const pinia = createTestingPinia({
    createSpy: vi.fn,
    initialState: {
      auth: { user: { id: 'u', email: 'ada@example.com', is_admin: true, created_at: '' }, checked: true },
    },
  })
  const wrapper = mount(AccountView, { global: { plugins: [pinia, router] }, attachTo: document.body })
  return { wrapper, auth: useAuthStore(pinia), chats: useChatsStore(pinia), router }
}

async function fill(wrapper: Awaited<ReturnType<typeof mountAccount>>['wrapper'], current: string, next: string, repeat = next) {
  await wrapper.get('input[name=current-password]').setValue(current)
  await wrapper.get('input[name=new-password]').setValue(next)
  await wrapper.get('input[name=repeat-password]').setValue(repeat)
}

afterEach(() => {
  document.body.innerHTML = ''
})

describe('AccountView', () => {
  it('shows who is signed in', async () => {
    const { wrapper } = await mountAccount()
    expect(wrapper.get('[data-test=account-email]').text()).toContain('ada@example.com')
    expect(wrapper.get('[data-test=account-email]').text()).toContain('admin')
  })

  it('will not send a short or mistyped new password', async () => {
    const { wrapper } = await mountAccount()
    await fill(wrapper, 'old secret', 'short')
    expect(wrapper.get('[data-test=change-password]').attributes('disabled')).toBeDefined()
    await fill(wrapper, 'old secret', 'long enough 1', 'long enough 2')
    expect(wrapper.get('[data-test=mismatch]').text()).toBe('The two new passwords differ.')
    expect(wrapper.get('[data-test=change-password]').attributes('disabled')).toBeDefined()
  })

  it('changes the password, says the other sessions ended and clears the form', async () => {
    const { wrapper, auth } = await mountAccount()
    vi.mocked(auth.changePassword).mockResolvedValue()
    await fill(wrapper, 'old secret', 'new secret 1')
    await wrapper.get('[data-test=password-form]').trigger('submit')
    await flushPromises()
    expect(auth.changePassword).toHaveBeenCalledWith('old secret', 'new secret 1')
    expect(wrapper.get('[data-test=password-changed]').text()).toContain('Every other session')
    expect((wrapper.get('input[name=current-password]').element as HTMLInputElement).value).toBe('')
  })

  it.each([
    [new ApiError(403, 'the current password is wrong'), 'The current password is wrong.'],
    [new ApiError(429, 'too many', 42), 'Too many attempts. Try again in 42 s.'],
  ])('explains a refused change (%s)', async (error, text) => {
    const { wrapper, auth } = await mountAccount()
    vi.mocked(auth.changePassword).mockRejectedValue(error)
    await fill(wrapper, 'old secret', 'new secret 1')
    await wrapper.get('[data-test=password-form]').trigger('submit')
    await flushPromises()
    expect(wrapper.get('[role=alert]').text()).toBe(text)
    expect(wrapper.find('[data-test=password-changed]').exists()).toBe(false)
  })

  it('asks before logging out everywhere, then goes to sign-in', async () => {
    const { wrapper, auth, chats, router } = await mountAccount()
    vi.mocked(auth.signOutEverywhere).mockResolvedValue()
    await wrapper.get('[data-test=logout-all]').trigger('click')
    expect(auth.signOutEverywhere).not.toHaveBeenCalled()
    const confirm = document.body.querySelector<HTMLButtonElement>('[data-test=confirm]')
    expect(document.body.textContent).toContain('this one included')
    confirm!.click()
    await flushPromises()
    expect(auth.signOutEverywhere).toHaveBeenCalledOnce()
    expect(chats.reset).toHaveBeenCalled()
    expect(router.currentRoute.value.name).toBe('signin')
  })
})
