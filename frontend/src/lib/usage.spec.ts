import { describe, expect, it } from 'vitest'
import { ApiError } from '@/api'
import { describeSendError } from '@/stores/conversation'
import { dailyLimitOf, lastDays, quotaText, seriesByModel, totalsBy } from './usage'

const spent = (detail: string, retryAfter: number | null = 3 * 3600 + 600) => new ApiError(429, detail, retryAfter)

describe('usage helpers', () => {
  it('tells a spent daily quota from the other 429s', () => {
    expect(dailyLimitOf(spent('daily message limit reached: 5 of 5 messages used today; it resets at 00:00 UTC'))).toBe('message')
    expect(dailyLimitOf(spent('daily token limit reached: 900 of 800 tokens used today'))).toBe('token')
    expect(dailyLimitOf(spent('too many messages: at most 20 per minute; try again in 4s'))).toBeNull()
    expect(dailyLimitOf(new ApiError(409, 'daily message limit reached'))).toBeNull()
  })

  it('says in the composer when the user can continue', () => {
    const now = Date.parse('2030-01-01T20:50:00Z')
    const text = quotaText(spent('daily message limit reached: 5 of 5 messages used today; it resets at 00:00 UTC'), now)
    expect(text).toMatch(/^You have used today's messages \(5 of 5\)\. You can continue at \d\d:\d\d \(in 3 h\)\.$/)
    expect(quotaText(spent('daily token limit reached: 1000 of 800 tokens used today', null))).toContain('after 00:00 UTC')
    expect(describeSendError(spent('daily token limit reached: 1000 of 800 tokens used today'), 100)).toContain("today's tokens")
    expect(describeSendError(spent('too many messages: at most 20 per minute', 4), 100)).toContain('too quickly')
  })

  it('lays the days out by model and sums totals', () => {
    const days = lastDays(3, Date.parse('2030-01-03T12:00:00Z'))
    expect(days).toEqual(['2030-01-01', '2030-01-02', '2030-01-03'])
    const rows = [
      { date: '2030-01-01', model: 'b', messages: 1, prompt_tokens: 10, completion_tokens: 5 },
      { date: '2030-01-03', model: 'a', messages: 2, prompt_tokens: 1, completion_tokens: 1 },
      { date: '2029-12-01', model: 'a', messages: 9, prompt_tokens: 9, completion_tokens: 9 },
    ]
    expect(seriesByModel(rows, days, 'tokens')).toEqual([
      { label: 'a', data: [0, 0, 2] },
      { label: 'b', data: [15, 0, 0] },
    ])
    expect(seriesByModel(rows, days, 'messages')[1]).toEqual({ label: 'b', data: [1, 0, 0] })
    expect(totalsBy(rows, (r) => r.model)).toEqual([
      { name: 'a', messages: 11, tokens: 20 },
      { name: 'b', messages: 1, tokens: 15 },
    ])
  })
})
