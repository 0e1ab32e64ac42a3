import { describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createTestingPinia } from '@pinia/testing'
import { createMemoryHistory, createRouter } from 'vue-router'
import AuthView from './AuthView.vue'
import { ApiError } from '@/api'
import { useAuthStore } from '@/stores/auth'
import { useSettingsStore } from '@/stores/settings'

async function mountAuth(mode: 'signin' | 'signup', allowRegistration: boolean) {
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/', name: 'new', component: { template: '<div />' } },
      { path: '/signin', name: 'signin', component: { template: '<div />' } },
      { path: '/signup', name: 'signup', component: { template: '<div />' } },
    ],
  })
  await router.push(`/${mode}`)
  const pinia = createTestingPinia({
    createSpy: vi.fn,
    initialState: { settings: { config: { allow_registration: allowRegistration, max_message_chars: 100 }, configLoaded: true } },
  })
  vi.mocked(useSettingsStore(pinia).loadConfig).mockResolvedValue()
  const wrapper = mount(AuthView, { props: { mode }, global: { plugins: [pinia, router] } })
  return { wrapper, auth: useAuthStore(pinia), router }
}

describe('AuthView', () => {
  it('says sign-up is closed and does not offer it', async () => {
    const { wrapper } = await mountAuth('signup', false)
    expect(wrapper.get('[data-test=registration-closed]').text()).toContain('Sign-up is closed')
    await wrapper.get('input[name=email]').setValue('a@b.c')
    await wrapper.get('input[name=password]').setValue('long enough')
    expect(wrapper.get('button[type=submit]').attributes('disabled')).toBeDefined()
  })

  it('hides the sign-up link from the sign-in page when sign-up is closed', async () => {
    const closed = await mountAuth('signin', false)
    expect(closed.wrapper.text()).toContain('Sign-up is closed on this server.')
    expect(closed.wrapper.text()).not.toContain('Create an account')
    const open = await mountAuth('signin', true)
    expect(open.wrapper.text()).toContain('Create an account')
  })

  it.each([
    [409, 'An account with this email already exists. Sign in instead.'],
    [403, 'Sign-up is closed on this server. Ask an administrator for an account.'],
  ])('explains a %i answer to sign-up', async (status, text) => {
    const { wrapper, auth } = await mountAuth('signup', true)
    vi.mocked(auth.signUp).mockRejectedValue(new ApiError(status, 'nope'))
    await wrapper.get('input[name=email]').setValue('ada@example.com')
    await wrapper.get('input[name=password]').setValue('long enough')
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    expect(wrapper.get('[role=alert]').text()).toBe(text)
  })

  it('says how long to wait after too many failed sign-ins', async () => {
    const { wrapper, auth } = await mountAuth('signin', true)
    vi.mocked(auth.signIn).mockRejectedValue(new ApiError(429, 'too many failed sign-ins', 840))
    await wrapper.get('input[name=email]').setValue('ada@example.com')
    await wrapper.get('input[name=password]').setValue('guess')
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    expect(wrapper.get('[role=alert]').text()).toBe('Too many attempts. Try again in 14 min.')
  })

  it('signs in and goes where it was asked to', async () => {
    const { wrapper, auth, router } = await mountAuth('signin', true)
    vi.mocked(auth.signIn).mockResolvedValue()
    await wrapper.get('input[name=email]').setValue(' ada@example.com ')
    await wrapper.get('input[name=password]').setValue('secret')
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    expect(auth.signIn).toHaveBeenCalledWith('ada@example.com', 'secret')
    expect(router.currentRoute.value.name).toBe('new')
  })
})

describe('AuthView with invites', () => {
  it('shows why an invite-only server refuses a sign-up', async () => {
    const { wrapper, auth } = await mountAuth('signup', true)
    vi.mocked(auth.signUp).mockRejectedValue(new ApiError(403, 'sign-up on this server needs an invite'))
    await wrapper.get('input[name=email]').setValue('ada@example.com')
    await wrapper.get('input[name=password]').setValue('long enough')
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    expect(wrapper.get('[role=alert]').text()).toBe('sign-up on this server needs an invite')
  })
})
