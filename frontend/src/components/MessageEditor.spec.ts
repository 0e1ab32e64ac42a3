import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import MessageEditor from './MessageEditor.vue'
import MessageItem from './MessageItem.vue'
import { message } from '@/test/fakeBackend'

describe('MessageEditor', () => {
  it('starts with the question, focused, and submits the new text', async () => {
    const wrapper = mount(MessageEditor, { props: { text: 'two', maxChars: 100 }, attachTo: document.body })
    const field = wrapper.get('textarea')
    expect((field.element as HTMLTextAreaElement).value).toBe('two')
    expect(document.activeElement).toBe(field.element)
    await field.setValue('two, better')
    await wrapper.get('[data-test=edit-save]').trigger('submit')
    expect(wrapper.emitted('save')).toEqual([['two, better']])
    wrapper.unmount()
  })

  it('Ctrl+Enter submits and Escape cancels', async () => {
    const wrapper = mount(MessageEditor, { props: { text: 'two' } })
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter', ctrlKey: true })
    await wrapper.get('textarea').trigger('keydown', { key: 'Escape' })
    expect(wrapper.emitted('save')).toEqual([['two']])
    expect(wrapper.emitted('cancel')).toHaveLength(1)
  })

  it('will not submit empty or over-long text', async () => {
    const wrapper = mount(MessageEditor, { props: { text: 'two', maxChars: 5 } })
    await wrapper.get('textarea').setValue('   ')
    expect(wrapper.get('[data-test=edit-save]').attributes('disabled')).toBeDefined()
    await wrapper.get('textarea').setValue('too long')
    expect(wrapper.get('[data-test=edit-save]').attributes('disabled')).toBeDefined()
    expect(wrapper.text()).toContain('8 / 5 characters')
  })
})

describe('MessageItem with the tree', () => {
  it('edits a question inline: Save & submit emits the text, Cancel puts the question back', async () => {
    const wrapper = mount(MessageItem, { props: { message: message({ id: 'u1', role: 'user', content: 'two' }) } })
    await wrapper.get('[data-test=edit]').trigger('click')
    await wrapper.get('textarea').setValue('two, better')
    await wrapper.get('form').trigger('submit')
    expect(wrapper.emitted('edit')).toEqual([['two, better']])
    expect(wrapper.find('[data-test=message-editor]').exists()).toBe(false)
    await wrapper.get('[data-test=edit]').trigger('click')
    await wrapper.get('[data-test=edit-cancel]').trigger('click')
    expect(wrapper.get('[data-test=message-text]').text()).toBe('two')
  })

  it('shows the versions of a question and of a reply, and passes a pick on', async () => {
    const question = message({ id: 'u2', role: 'user', content: 'q', sibling_ids: ['u1', 'u2'] })
    const wrapper = mount(MessageItem, { props: { message: question } })
    expect(wrapper.get('[data-test=branch-count]').text()).toBe('2 / 2')
    await wrapper.get('[data-test=branch-prev]').trigger('click')
    expect(wrapper.emitted('branch')).toEqual([['u1']])
    const reply = mount(MessageItem, { props: { message: message({ id: 'a1', content: 'x', sibling_ids: ['a1', 'a2'] }) } })
    expect(reply.get('[data-test=branch-count]').text()).toBe('1 / 2')
    expect(reply.find('[data-test=regenerate]').exists()).toBe(true)
  })
})
