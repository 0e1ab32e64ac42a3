import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import BranchNav from './BranchNav.vue'
import { message } from '@/test/fakeBackend'

describe('BranchNav', () => {
  const nav = (id: string, disabled = false) =>
    mount(BranchNav, { props: { message: message({ id, sibling_ids: ['r1', 'r2', 'r3'] }), disabled } })

  it('is not there for a message without siblings', () => {
    const wrapper = mount(BranchNav, { props: { message: message({ id: 'r1' }) } })
    expect(wrapper.find('[data-test=branch-nav]').exists()).toBe(false)
  })

  it('shows ‹ 2 / 3 › and asks for the neighbouring versions', async () => {
    const wrapper = nav('r2')
    expect(wrapper.get('[data-test=branch-count]').text()).toBe('2 / 3')
    expect(wrapper.get('[data-test=branch-nav]').attributes('aria-label')).toBe('Version 2 of 3 of this reply')
    await wrapper.get('[data-test=branch-prev]').trigger('click')
    await wrapper.get('[data-test=branch-next]').trigger('click')
    expect(wrapper.emitted('go')).toEqual([['r1'], ['r3']])
  })

  it('has no step past either end, and none while disabled', () => {
    expect(nav('r1').get('[data-test=branch-prev]').attributes('disabled')).toBeDefined()
    expect(nav('r3').get('[data-test=branch-next]').attributes('disabled')).toBeDefined()
    const busy = nav('r2', true)
    expect(busy.get('[data-test=branch-prev]').attributes('disabled')).toBeDefined()
    expect(busy.get('[data-test=branch-next]').attributes('disabled')).toBeDefined()
  })
})
