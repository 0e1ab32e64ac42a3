import { describe, expect, it } from 'vitest'
import { deviceName, when } from './when'

describe('deviceName', () => {
  it('names the browser and the system', () => {
    const ua = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'
    expect(deviceName(ua)).toBe('Chrome on Linux')
    expect(deviceName('Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile Safari/604.1')).toBe('Safari on iOS')
  })
  it('falls back to the text itself, or says it does not know', () => {
    expect(deviceName('curl/8.0')).toBe('curl/8.0')
    expect(deviceName(null)).toBe('Unknown device')
  })
})

describe('when', () => {
  it('says never for no date', () => {
    expect(when(null)).toBe('never')
    expect(when('2026-12-03T08:00:00Z')).toMatch(/2026/)
  })
})
