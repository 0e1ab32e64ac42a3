import { afterEach, describe, expect, it, vi } from 'vitest'
import { mount } from '@vue/test-utils'
import MessageItem from './MessageItem.vue'
import { message } from '@/test/fakeBackend'
import type { Message } from '@/api'

function mountItem(fields: Partial<Message>, props: { maxRetries?: number; chatModel?: string } = {}) {
  return mount(MessageItem, {
    props: {
      message: message({ id: 'm1', ...fields }),
      maxRetries: props.maxRetries ?? null,
      chatModel: props.chatModel ?? null,
    },
  })
}

describe('MessageItem', () => {
  afterEach(() => vi.useRealTimers())

  it('shows a user message as plain text, markup and all', () => {
    const wrapper = mountItem({ role: 'user', content: '<img src=x onerror="window.pwned=1"> **hi**' })
    expect(wrapper.find('img').exists()).toBe(false)
    expect(wrapper.get('[data-test=message-text]').text()).toBe('<img src=x onerror="window.pwned=1"> **hi**')
  })

  it('renders an assistant reply as sanitised Markdown', () => {
    const wrapper = mountItem({ content: 'Echo: <img src=x onerror="window.pwned=1"> **hi**' })
    expect(wrapper.find('img').exists()).toBe(false)
    expect(wrapper.get('strong').text()).toBe('hi')
  })

  it('says a queued reply is queued', () => {
    expect(mountItem({ status: 'pending' }).get('[data-test=reply-status]').text()).toBe('Queued…')
  })

  it('shows a reply waiting for a key with its place in line and expected start', async () => {
    vi.useFakeTimers()
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'))
    const start = Date.now() + 40_000
    const wrapper = mountItem({ status: 'queued', queue_position: 3, expected_start_at: start })
    expect(wrapper.get('[data-test=reply-status]').text()).toBe('Queued · #3 · about 40 s')
    vi.advanceTimersByTime(30_000)
    await wrapper.vm.$nextTick()
    expect(wrapper.get('[data-test=reply-status]').text()).toBe('Queued · #3 · about 10 s')
  })

  it('names the model that answered when it is not the chat\'s', () => {
    const fallback = mountItem({ content: 'ok', model: 'gemini-2.5-flash' }, { chatModel: 'gemini-2.5-pro' })
    expect(fallback.get('[data-test=answered-by]').text()).toBe('Answered by gemini-2.5-flash')
    const same = mountItem({ content: 'ok', model: 'gemini-2.5-pro' }, { chatModel: 'gemini-2.5-pro' })
    expect(same.find('[data-test=answered-by]').exists()).toBe(false)
  })

  it('counts down to the next automatic attempt', () => {
    vi.useFakeTimers()
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'))
    const wrapper = mountItem({ status: 'retrying', attempt: 2, next_attempt_at: '2030-01-01T00:00:58Z' }, { maxRetries: 4 })
    expect(wrapper.get('[data-test=reply-status]').text()).toBe('The model is busy: retrying in 58 s, attempt 2 of 4.')
  })

  it('shows why a reply failed and offers Retry', async () => {
    const wrapper = mountItem({ status: 'failed', error: 'The model gemini-9 does not exist.' })
    expect(wrapper.get('[data-test=reply-status]').text()).toBe('Failed: The model gemini-9 does not exist.')
    await wrapper.get('[data-test=retry]').trigger('click')
    expect(wrapper.emitted('retry')).toHaveLength(1)
  })

  it('offers Retry on a cancelled reply and keeps its partial text', () => {
    const wrapper = mountItem({ status: 'cancelled', content: 'Echo: half' })
    expect(wrapper.text()).toContain('Echo: half')
    expect(wrapper.get('[data-test=reply-status]').text()).toBe('Cancelled: the reply was stopped.')
    expect(wrapper.find('[data-test=retry]').exists()).toBe(true)
  })

  it('offers Regenerate on every completed reply, not on one being written', () => {
    expect(mountItem({ content: 'ok' }).find('[data-test=regenerate]').exists()).toBe(true)
    expect(mountItem({ status: 'pending' }).find('[data-test=regenerate]').exists()).toBe(false)
  })
})
