/** A search snippet cut into plain and highlighted parts, for the template to mark up (the
 * server sends offsets, never HTML). Overlapping, reversed or out-of-range offsets are clamped. */
export interface SnippetPart {
  text: string
  hit: boolean
}

export function splitHighlights(snippet: string, highlights: [number, number][]): SnippetPart[] {
  const parts: SnippetPart[] = []
  let at = 0
  const sorted = [...highlights].sort((a, b) => a[0] - b[0])
  for (const [rawStart, rawEnd] of sorted) {
    const start = Math.max(at, Math.min(rawStart, snippet.length))
    const end = Math.max(start, Math.min(rawEnd, snippet.length))
    if (end === start) continue
    if (start > at) parts.push({ text: snippet.slice(at, start), hit: false })
    parts.push({ text: snippet.slice(start, end), hit: true })
    at = end
  }
  if (at < snippet.length) parts.push({ text: snippet.slice(at), hit: false })
  return parts
}
