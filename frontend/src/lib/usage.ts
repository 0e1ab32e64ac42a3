// Quotas and usage for the screens: the composer's 429 line, token counts, chart series.
import { ApiError, describeDetail, type UsageDay } from '@/api'
import { untilText } from './format'

/** The daily quota a 429 names ("daily message limit reached: …"), or null for other 429s. */
export function dailyLimitOf(err: unknown): 'message' | 'token' | null {
  if (!(err instanceof ApiError) || err.status !== 429) return null
  const match = /daily (message|token) limit reached/.exec(describeDetail(err.detail))
  return match ? (match[1] as 'message' | 'token') : null
}

/** "09:00" in the reader's own clock. */
export function clockText(at: number): string {
  return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false })
}

/** The composer's line for a spent daily quota: when the user can continue. */
export function quotaText(err: ApiError, now = Date.now()): string {
  const which = dailyLimitOf(err) === 'token' ? 'tokens' : 'messages'
  const used = /(\d+) of (\d+)/.exec(describeDetail(err.detail))
  const count = used ? ` (${Number(used[1]).toLocaleString()} of ${Number(used[2]).toLocaleString()})` : ''
  if (err.retryAfter === null) return `You have used today's ${which}${count}. You can continue after 00:00 UTC.`
  const at = now + err.retryAfter * 1000
  return `You have used today's ${which}${count}. You can continue at ${clockText(at)} (in ${untilText(at, now)}).`
}

/** 12,345 → "12.3k": short enough for a chart axis or a message's details row. */
export function compact(n: number): string {
  return new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 }).format(n)
}

/** The last `count` UTC days, oldest first, as YYYY-MM-DD (the chart's x axis). */
export function lastDays(count: number, now = Date.now()): string[] {
  const days: string[] = []
  for (let i = count - 1; i >= 0; i--) days.push(new Date(now - i * 86_400_000).toISOString().slice(0, 10))
  return days
}

export interface Series {
  label: string
  data: number[]
}

/** Tokens (or messages) per day, one series per model, on the axis `days`. */
export function seriesByModel(rows: UsageDay[], days: string[], measure: 'tokens' | 'messages'): Series[] {
  const byModel = new Map<string, number[]>()
  for (const row of rows) {
    const index = days.indexOf(row.date)
    if (index < 0) continue
    const data = byModel.get(row.model) ?? days.map(() => 0)
    data[index] = (data[index] ?? 0) + (measure === 'tokens' ? row.prompt_tokens + row.completion_tokens : row.messages)
    byModel.set(row.model, data)
  }
  return [...byModel.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([label, data]) => ({ label, data }))
}

export interface Total {
  name: string
  messages: number
  tokens: number
}

/** Rows summed by `name` (an email, a key id), largest token use first. */
export function totalsBy<T extends UsageDay>(rows: T[], name: (row: T) => string): Total[] {
  const found = new Map<string, Total>()
  for (const row of rows) {
    const key = name(row)
    const total = found.get(key) ?? { name: key, messages: 0, tokens: 0 }
    total.messages += row.messages
    total.tokens += row.prompt_tokens + row.completion_tokens
    found.set(key, total)
  }
  return [...found.values()].sort((a, b) => b.tokens - a.tokens || b.messages - a.messages)
}

/** A limit's share used, 0..1 (null: no limit). */
export function share(used: number, limit: number | null): number | null {
  if (!limit) return null
  return Math.min(1, used / limit)
}
