import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import ModelNotice from './ModelNotice.vue'

describe('ModelNotice', () => {
  it('says which model replies use when the chat’s own is withdrawn', () => {
    const wrapper = mount(ModelNotice, { props: { model: 'gemini-1.0-pro', modelInUse: 'gemini-2.5-flash' } })
    const line = wrapper.get('[data-test=model-withdrawn]')
    expect(line.text()).toContain('gemini-1.0-pro is no longer offered')
    expect(line.text()).toContain('replies in this chat use gemini-2.5-flash')
  })

  it('says nothing while the chat’s model is offered', () => {
    const wrapper = mount(ModelNotice, { props: { model: 'gemini-2.5-pro', modelInUse: 'gemini-2.5-pro' } })
    expect(wrapper.find('[data-test=model-withdrawn]').exists()).toBe(false)
  })
})
