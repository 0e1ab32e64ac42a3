import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import UsageView from './UsageView.vue'
import AdminUsageView from './AdminUsageView.vue'
import { FakeBackend } from '@/test/fakeBackend'
import type { AdminUsageReport, PoolKey, UsageReport } from '@/api'

const today = new Date().toISOString().slice(0, 10)
const resets = new Date(Date.parse(today) + 86_400_000).toISOString()

function own(fields: Partial<UsageReport> = {}): UsageReport {
  return {
    days: [{ date: today, model: 'gemini-2.5-flash', messages: 4, prompt_tokens: 300, completion_tokens: 500 }],
    today: { messages: 4, tokens: 800 },
    limits: { messages_per_day: 5, tokens_per_day: null },
    resets_at: resets,
    ...fields,
  }
}

describe('UsageView', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('shows today against the limits and when the counts start again', async () => {
    setActivePinia(createPinia())
    const backend = new FakeBackend().route('GET', '/api/usage', own()).install()
    const wrapper = mount(UsageView)
    await flushPromises()
    expect(backend.calls[0]?.url).toBe('/api/usage?days=30')
    const messages = wrapper.get('[data-test=today-messages]')
    expect(messages.text()).toContain('4 of 5')
    expect(messages.get('[role=meter]').attributes('aria-valuenow')).toBe('4')
    expect(messages.get('[role=meter] span').classes()).toContain('high')
    const tokens = wrapper.get('[data-test=today-tokens]')
    expect(tokens.text()).toContain('800')
    expect(tokens.text()).toContain('no daily limit')
    expect(tokens.find('[role=meter]').exists()).toBe(false)
    expect(wrapper.get('[data-test=usage-reset]').text()).toContain('00:00 UTC')
    expect(wrapper.find('[data-test=usage-bars] canvas').exists()).toBe(true)
  })

  it('says so when nothing was sent', async () => {
    setActivePinia(createPinia())
    new FakeBackend().route('GET', '/api/usage', own({ days: [], today: { messages: 0, tokens: 0 } })).install()
    const wrapper = mount(UsageView)
    await flushPromises()
    expect(wrapper.get('[data-test=usage-empty]').text()).toContain('Nothing sent')
  })
})

describe('AdminUsageView', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('ranks the top users and sums the key pool share used today', async () => {
    setActivePinia(createPinia())
    const row = { date: today, model: 'gemini-2.5-flash', messages: 1, prompt_tokens: 10, completion_tokens: 10 }
    const report = (group_by: AdminUsageReport['group_by']): AdminUsageReport => ({
      group_by,
      resets_at: resets,
      days:
        group_by === 'user'
          ? [
              { ...row, user_id: 'u1', email: 'light@example.com' },
              { ...row, user_id: 'u2', email: 'heavy@example.com', messages: 3, prompt_tokens: 900 },
            ]
          : group_by === 'key'
            ? [{ ...row, key_id: '3f9a1c2e' }]
            : [{ ...row, messages: 4, prompt_tokens: 910, completion_tokens: 20 }],
    })
    const keys = [
      { id: 'k1', state: 'active', models: [{ model: 'gemini-2.5-flash', used_today: 25, limit_per_day: 100 }] },
      { id: 'k2', state: 'disabled', models: [{ model: 'gemini-2.5-flash', used_today: 0, limit_per_day: 100 }] },
    ] as unknown as PoolKey[]
    new FakeBackend()
      .route('GET', '/api/admin/usage', (_: RequestInit, url: string) => {
        const groupBy = new URL(url, 'http://x').searchParams.get('group_by') as AdminUsageReport['group_by']
        return new Response(JSON.stringify(report(groupBy)), { headers: { 'Content-Type': 'application/json' } })
      })
      .route('GET', '/api/admin/keys', keys)
      .install()
    const wrapper = mount(AdminUsageView)
    await flushPromises()
    expect(wrapper.get('[data-test=tile-messages]').text()).toContain('4')
    expect(wrapper.get('[data-test=tile-users]').text()).toContain('2')
    expect(wrapper.get('[data-test=tile-pool]').text()).toContain('25 %')
    const top = wrapper.findAll('[data-test=top-user]').map((r) => r.text())
    expect(top[0]).toContain('heavy@example.com')
    expect(top[1]).toContain('light@example.com')
    expect(wrapper.get('[data-test=pool-share]').text()).toContain('25 of 100 requests')
  })
})
