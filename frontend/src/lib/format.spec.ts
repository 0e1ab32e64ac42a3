import { describe, expect, it } from 'vitest'
import { chatTitle, retryText, toEpochMs, untilText } from './format'

describe('untilText', () => {
  it('counts seconds, then minutes, then hours, never below zero', () => {
    expect(untilText(60_000, 0)).toBe('60 s')
    expect(untilText(60_400, 0)).toBe('60 s')
    expect(untilText(600_000, 0)).toBe('10 min')
    expect(untilText(3_600_000 * 3, 0)).toBe('3 h')
    expect(untilText(0, 5_000)).toBe('0 s')
  })
})

describe('toEpochMs', () => {
  it('reads ISO-8601 and epoch seconds, and nothing else', () => {
    expect(toEpochMs('2030-01-01T00:00:00Z')).toBe(Date.UTC(2030, 0, 1))
    expect(toEpochMs(1_900_000_000.5)).toBe(1_900_000_000_500)
    expect(toEpochMs('1900000000')).toBe(1_900_000_000_000)
    expect(toEpochMs(null)).toBeNull()
    expect(toEpochMs('soon')).toBeNull()
  })
})

describe('chatTitle', () => {
  it('names an untitled chat', () => {
    expect(chatTitle('  ')).toBe('New chat')
    expect(chatTitle('Plans')).toBe('Plans')
  })
})

describe('retryText', () => {
  it('reads a Retry-After in seconds', () => {
    expect(retryText(42)).toBe('in 42 s')
    expect(retryText(900)).toBe('in 15 min')
    expect(retryText(null)).toBe('in a moment')
  })
})
