import { describe, expect, it } from 'vitest'
import { splitHighlights } from './highlight'

describe('splitHighlights', () => {
  it('cuts a snippet into plain and marked parts', () => {
    expect(splitHighlights('use kubectl drain now', [[4, 11], [12, 17]])).toEqual([
      { text: 'use ', hit: false },
      { text: 'kubectl', hit: true },
      { text: ' ', hit: false },
      { text: 'drain', hit: true },
      { text: ' now', hit: false },
    ])
  })

  it('counts UTF-16 units, as the server does', () => {
    const parts = splitHighlights('🎉 llama', [[3, 8]])
    expect(parts).toEqual([
      { text: '🎉 ', hit: false },
      { text: 'llama', hit: true },
    ])
  })

  it('survives unsorted, overlapping and out-of-range offsets', () => {
    expect(splitHighlights('abcdef', [[4, 99], [0, 2], [1, 3], [5, 2]])).toEqual([
      { text: 'ab', hit: true },
      { text: 'c', hit: true },
      { text: 'd', hit: false },
      { text: 'ef', hit: true },
    ])
  })

  it('keeps markup as text', () => {
    expect(splitHighlights('<b>x</b>', [])).toEqual([{ text: '<b>x</b>', hit: false }])
  })
})
