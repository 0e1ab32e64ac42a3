import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import MessageComposer from './MessageComposer.vue'

function mountComposer(props: Partial<{ modelValue: string; replying: boolean; error: string | null; maxChars: number }> = {}) {
  return mount(MessageComposer, {
    props: {
      modelValue: 'Hello',
      maxChars: 100,
      replying: false,
      sending: false,
      error: null,
      ...props,
      'onUpdate:modelValue': () => undefined,
    },
  })
}

describe('MessageComposer', () => {
  it('sends on Enter', async () => {
    const wrapper = mountComposer()
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter' })
    expect(wrapper.emitted('send')).toEqual([['Hello']])
  })

  it('does not send on Shift+Enter (a line break)', async () => {
    const wrapper = mountComposer()
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter', shiftKey: true })
    expect(wrapper.emitted('send')).toBeUndefined()
  })

  it('does not send blank text', async () => {
    const wrapper = mountComposer({ modelValue: '  \n ' })
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter' })
    expect(wrapper.emitted('send')).toBeUndefined()
    expect(wrapper.get('[data-test=send]').attributes('disabled')).toBeDefined()
  })

  it('while a reply runs: offers Stop, says why it will not send', async () => {
    const wrapper = mountComposer({ replying: true })
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter' })
    expect(wrapper.emitted('send')).toBeUndefined()
    expect(wrapper.find('[data-test=send]').exists()).toBe(false)
    expect(wrapper.get('[data-test=composer-reason]').text()).toBe('Wait for the reply to finish, or stop it.')
    await wrapper.get('[data-test=stop]').trigger('click')
    expect(wrapper.emitted('stop')).toHaveLength(1)
  })

  it('shows the character limit near and over it', async () => {
    const wrapper = mountComposer({ modelValue: 'x'.repeat(50) })
    expect(wrapper.get('[data-test=counter]').text()).toBe('50 / 100')
    expect(wrapper.get('[data-test=counter]').classes()).not.toContain('near')
    await wrapper.setProps({ modelValue: 'x'.repeat(101) })
    expect(wrapper.get('[data-test=counter]').text()).toBe('101 / 100')
    expect(wrapper.get('[data-test=counter]').classes()).toEqual(expect.arrayContaining(['near', 'over']))
    expect(wrapper.get('[data-test=composer-reason]').text()).toBe('Too long: at most 100 characters.')
    expect(wrapper.get('[data-test=send]').attributes('disabled')).toBeDefined()
  })

  it('shows an error and keeps the text', () => {
    const wrapper = mountComposer({ error: 'You are sending messages too quickly. Try again in 17 s.' })
    expect(wrapper.get('[role=alert]').text()).toBe('You are sending messages too quickly. Try again in 17 s.')
    expect((wrapper.get('textarea').element as HTMLTextAreaElement).value).toBe('Hello')
  })
})
