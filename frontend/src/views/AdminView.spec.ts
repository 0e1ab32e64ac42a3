import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import AdminView from './AdminView.vue'
import { FakeBackend, json } from '@/test/fakeBackend'
import type { KeySeries, PoolKey, PoolKeyModel, PoolStatus } from '@/api'
import { REFRESH_MS } from '@/stores/keyPool'

function model(fields: Partial<PoolKeyModel> & Pick<PoolKeyModel, 'model'>): PoolKeyModel {
  return {
    state: 'active',
    reason: null,
    used_last_minute: 0,
    limit_per_minute: 10,
    used_today: 0,
    limit_per_day: null,
    tokens_last_minute: 0,
    limit_tokens_per_minute: null,
    cooldown_until: null,
    cooldown_remaining_seconds: 0,
    requests_total: 0,
    ...fields,
  }
}

function key(fields: Partial<PoolKey> & Pick<PoolKey, 'id'>): PoolKey {
  return {
    label: '…abcd',
    source: 'env',
    state: 'active',
    reason: null,
    used_last_minute: 0,
    cooldown_until: null,
    failures: 0,
    requests_total: 0,
    last_error: null,
    disabled_at: null,
    recheck_at: null,
    added_at: null,
    models: [],
    ...fields,
  }
}

const series: KeySeries = {
  window: 'hour',
  step_seconds: 60,
  points: [{ at: '2030-01-01T00:00:00Z', calls: 3, rate_limited: 1, errors: 0 }],
}

describe('AdminView (the key pool page)', () => {
  let server: FakeBackend
  let keys: PoolKey[]
  let pool: PoolStatus

  beforeEach(() => {
    setActivePinia(createPinia())
    const soon = new Date(Date.now() + 30_000).toISOString()
    keys = [
      key({
        id: 'aaaa1111',
        label: 'team A',
        source: 'admin',
        requests_total: 12,
        models: [
          model({ model: 'gemini-2.5-pro', state: 'cooling', reason: 'rpd', used_today: 100, limit_per_day: 100, limit_per_minute: 5, cooldown_until: soon }),
          model({ model: 'gemini-2.5-flash', used_last_minute: 4, tokens_last_minute: 1200, limit_tokens_per_minute: 250000 }),
        ],
      }),
      key({ id: 'bbbb2222', state: 'disabled', reason: 'api_not_enabled', recheck_at: soon }),
    ]
    pool = { throttled_until: null, limits: {}, capacity: {} }
    server = new FakeBackend()
      .route('GET', '/api/admin/keys', () => json(keys))
      .route('GET', '/api/admin/pool', () => json(pool))
      .route('GET', '/api/admin/keys/series', () => json(series))
      .route('GET', '/api/admin/keys/aaaa1111/errors', () =>
        json([{ at: '2030-01-01T00:00:05Z', model: 'gemini-2.5-pro', code: 'rpd', status: 429, message: 'quota per day' }]),
      )
      .install()
  })
  afterEach(() => vi.useRealTimers())

  async function mountPage() {
    const wrapper = mount(AdminView, { global: { stubs: { KeyUsageChart: true } }, attachTo: document.body })
    await flushPromises()
    return wrapper
  }

  it('shows each key per model: state with reason, use against the limits, cooldown', async () => {
    const wrapper = await mountPage()
    const rows = wrapper.findAll('[data-test=key-row]')
    expect(rows).toHaveLength(2)
    const pro = rows[0]!.get('[data-model="gemini-2.5-pro"]').text()
    expect(pro).toContain('cooling')
    expect(pro).toContain('daily quota, until midnight Pacific')
    expect(pro).toContain('0 / 5')
    expect(pro).toContain('100 / 100')
    expect(pro).toMatch(/(29|30) s left/)
    const flash = rows[0]!.get('[data-model="gemini-2.5-flash"]').text()
    expect(flash).toContain('4 / 10')
    expect(flash).toContain('1200 / 250000')
    expect(rows[1]!.get('[data-test=key-reason]').text()).toBe('API not enabled for its project')
    expect(rows[1]!.text()).toMatch(/checked again in (29|30) s/)
    expect(wrapper.find('[data-test=throttled]').exists()).toBe(false)
    wrapper.unmount()
  })

  it('says so when Google throttles the whole pool', async () => {
    pool = { ...pool, throttled_until: new Date(Date.now() + 45_000).toISOString() }
    const wrapper = await mountPage()
    expect(wrapper.get('[data-test=throttled]').text()).toContain('Google is throttling')
    wrapper.unmount()
  })

  it('updates live', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
    const wrapper = await mountPage()
    const reads = () => server.calls.filter((c) => c.url === '/api/admin/keys').length
    expect(reads()).toBe(1)
    keys = [...keys, key({ id: 'cccc3333' })]
    await vi.advanceTimersByTimeAsync(REFRESH_MS + 10)
    await flushPromises()
    expect(reads()).toBe(2)
    expect(wrapper.findAll('[data-test=key-row]')).toHaveLength(3)
    wrapper.unmount()
  })

  it('adds a key, and shows why Google refused one', async () => {
    let answer = json({ detail: 'Google rejected the key: the key is not valid (400 INVALID_ARGUMENT: API key not valid.)' }, 422)
    server.route('POST', '/api/admin/keys', () => answer)
    const wrapper = await mountPage()
    await wrapper.get('[data-test=new-key]').setValue('AIza-bad')
    await wrapper.get('[data-test=add-key]').trigger('submit')
    await flushPromises()
    expect(wrapper.get('[data-test=add-error]').text()).toContain('the key is not valid')

    answer = json(key({ id: 'dddd4444', label: 'night' }), 201)
    await wrapper.get('[data-test=new-key]').setValue('AIza-good')
    await wrapper.get('[data-test=new-label]').setValue('night')
    await wrapper.get('[data-test=add-key]').trigger('submit')
    await flushPromises()
    const posts = server.calls.filter((c) => c.method === 'POST')
    expect(posts.at(-1)?.body).toEqual({ key: 'AIza-good', label: 'night' })
    expect(wrapper.get('[data-test=added]').text()).toContain('night (dddd4444)')
    expect((wrapper.get('[data-test=new-key]').element as HTMLInputElement).value).toBe('')
    wrapper.unmount()
  })

  it('disables, enables and removes a key only after confirmation', async () => {
    server
      .route('PATCH', '/api/admin/keys/aaaa1111', () => json(keys[0]))
      .route('DELETE', '/api/admin/keys/aaaa1111', () => json(null, 204))
    const wrapper = await mountPage()
    const first = () => wrapper.findAll('[data-test=key-row]')[0]!
    await first().get('[data-test=disable]').trigger('click')
    expect(server.calls.some((c) => c.method === 'PATCH')).toBe(false)
    const confirm = document.querySelector<HTMLButtonElement>('[data-test=confirm]')!
    expect(document.body.textContent).toContain('Disable this key?')
    confirm.click()
    await flushPromises()
    expect(server.calls.find((c) => c.method === 'PATCH')?.body).toEqual({ disabled: true })

    keys[0] = { ...keys[0]!, state: 'disabled', reason: 'admin_disabled' }
    await useRefresh()
    await first().get('[data-test=enable]').trigger('click')
    document.querySelector<HTMLButtonElement>('[data-test=confirm]')!.click()
    await flushPromises()
    expect(server.calls.filter((c) => c.method === 'PATCH').at(-1)?.body).toEqual({ disabled: false })

    await first().get('[data-test=remove]').trigger('click')
    expect(document.body.textContent).toContain('Remove this key?')
    document.querySelector<HTMLButtonElement>('[data-test=confirm]')!.click()
    await flushPromises()
    expect(server.calls.some((c) => c.method === 'DELETE' && c.url === '/api/admin/keys/aaaa1111')).toBe(true)
    wrapper.unmount()
  })

  it('renames a key and shows its last errors', async () => {
    server.route('PATCH', '/api/admin/keys/aaaa1111', () => json(keys[0]))
    const wrapper = await mountPage()
    const first = () => wrapper.findAll('[data-test=key-row]')[0]!
    await first().get('[data-test=rename]').trigger('click')
    await first().get('[data-test=label-input]').setValue('team B')
    await first().get('form').trigger('submit')
    await flushPromises()
    expect(server.calls.find((c) => c.method === 'PATCH')?.body).toEqual({ label: 'team B' })

    await first().get('[data-test=show-errors]').trigger('click')
    await flushPromises()
    const errors = first().get('[data-test=key-errors]').text()
    expect(errors).toContain('gemini-2.5-pro')
    expect(errors).toContain('429 rpd')
    expect(errors).toContain('quota per day')
    expect(server.calls.some((c) => c.url === '/api/admin/keys/series?window=hour&key_id=aaaa1111')).toBe(true)
    wrapper.unmount()
  })
})

async function useRefresh(): Promise<void> {
  const { useKeyPoolStore } = await import('@/stores/keyPool')
  await useKeyPoolStore().refresh()
  await flushPromises()
}
