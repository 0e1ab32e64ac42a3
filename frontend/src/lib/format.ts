/** "58 s", "3 min", "2 h": how long until `target`, never negative. */
export function untilText(target: number, now: number): string {
  const seconds = Math.max(0, Math.round((target - now) / 1000))
  if (seconds < 120) return `${seconds} s`
  const minutes = Math.round(seconds / 60)
  if (minutes < 120) return `${minutes} min`
  return `${Math.round(minutes / 60)} h`
}

/** "in 40 s", "in 15 min" from a Retry-After in seconds; "in a moment" without one. */
export function retryText(retryAfter: number | null): string {
  return retryAfter ? `in ${untilText(retryAfter * 1000, 0)}` : 'in a moment'
}

/** Accepts ISO-8601 or epoch seconds; null when absent or unreadable. */
export function toEpochMs(value: string | number | null | undefined): number | null {
  if (value === null || value === undefined || value === '') return null
  if (typeof value === 'number') return value * 1000
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? null : ms
}

export function chatTitle(title: string | null | undefined): string {
  return title && title.trim() ? title : 'New chat'
}
