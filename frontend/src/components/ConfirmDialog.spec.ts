import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import ConfirmDialog from './ConfirmDialog.vue'

describe('ConfirmDialog', () => {
  it('starts on Cancel, keeps Tab inside, and Escape cancels', async () => {
    const wrapper = mount(ConfirmDialog, {
      props: { title: 'Delete this chat?', confirmLabel: 'Delete', danger: true },
      slots: { default: 'Gone for good.' },
      attachTo: document.body,
    })
    const cancel = document.body.querySelector<HTMLButtonElement>('.modal .btn.ghost')
    const confirm = document.body.querySelector<HTMLButtonElement>('[data-test=confirm]')
    expect(document.activeElement).toBe(cancel)

    confirm?.focus()
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab' }))
    expect(document.activeElement).toBe(cancel)
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab', shiftKey: true }))
    expect(document.activeElement).toBe(confirm)

    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }))
    expect(wrapper.emitted('cancel')).toHaveLength(1)
    wrapper.unmount()
  })
})
