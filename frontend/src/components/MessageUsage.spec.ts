import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import MessageItem from './MessageItem.vue'
import { message } from '@/test/fakeBackend'
import type { Message, MessageTiming } from '@/api'

function mountItem(fields: Partial<Message & MessageTiming>) {
  return mount(MessageItem, { props: { message: message({ id: 'm1', ...fields }), isLast: true } })
}

describe('MessageUsage', () => {
  it("shows a reply's tokens and latency, the split in its title", () => {
    const row = mountItem({ prompt_tokens: 1200, completion_tokens: 34, latency_ms: 2350 }).get('[data-test=message-usage]')
    expect(row.get('[data-test=message-tokens]').text()).toBe('1,234 tokens')
    expect(row.get('[data-test=message-latency]').text()).toBe('· 2.4 s')
    expect(row.attributes('title')).toBe('1,200 prompt + 34 reply tokens, answered in 2.4 s')
  })

  it('shows nothing for a question, a reply in progress or one without counts', () => {
    expect(mountItem({ role: 'user', prompt_tokens: 5 }).find('[data-test=message-usage]').exists()).toBe(false)
    expect(mountItem({ status: 'pending', prompt_tokens: 5 }).find('[data-test=message-usage]').exists()).toBe(false)
    expect(mountItem({ prompt_tokens: null, completion_tokens: null }).find('[data-test=message-usage]').exists()).toBe(false)
  })
})
