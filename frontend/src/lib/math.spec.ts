import { beforeAll, describe, expect, it } from 'vitest'
import { loadMath, renderMarkdown } from './markdown'

function dom(html: string): HTMLElement {
  const div = document.createElement('div')
  div.innerHTML = html
  return div
}

describe('math', () => {
  beforeAll(() => loadMath())

  it.each([
    ['$x^2$', false],
    ['\\(x^2\\)', false],
    ['$$x^2$$', true],
    ['\\[x^2\\]', true],
  ])('renders %s with KaTeX', (source, display) => {
    const el = dom(renderMarkdown(`Before\n\n${source}\n\nafter`))
    expect(el.querySelector('.katex')).not.toBeNull()
    expect(el.querySelector('.katex-display') !== null).toBe(display)
    expect(el.querySelector('.katex math msup')).not.toBeNull() // MathML, for screen readers
  })

  it('leaves a lone dollar sign as text', () => {
    const el = dom(renderMarkdown('It costs $5 and then $10.'))
    expect(el.querySelector('.katex')).toBeNull()
    expect(el.textContent).toContain('$5 and then $10.')
  })

  it.each([
    '$\\href{javascript:alert(1)}{click}$',
    '$\\url{javascript:alert(1)}$',
    '$$\\htmlId{x}{\\htmlData{onclick=alert(1)}{y}}$$',
    '\\(\\includegraphics{https://example.com/x.png}\\)',
    '$<img src=x onerror="window.pwned=1">$',
    '$\\text{<script>window.pwned=1</script>}$',
    '\\[\\style{background:url(javascript:alert(1))}{x}\\]',
  ])('keeps injection through math inert: %s', (payload) => {
    const el = dom(renderMarkdown(payload))
    expect(el.querySelector('script, img, iframe, a, [onclick], [onerror]')).toBeNull()
    // The source may show as text (KaTeX's error colour), never in an attribute.
    const attributes = [...el.querySelectorAll('*')].flatMap((n) => [...n.attributes].map((a) => a.value))
    expect(attributes.filter((v) => /javascript:|url\(/i.test(v))).toEqual([])
    expect((window as unknown as { pwned?: number }).pwned).toBeUndefined()
  })

  it('renders code blocks with a wrap toggle beside copy', () => {
    const el = dom(renderMarkdown('```js\nconst a = 1\n```'))
    const wrap = el.querySelector('button[data-wrap-code]')
    expect(wrap?.getAttribute('aria-pressed')).toBe('false')
    expect(el.querySelector('button[data-copy-code]')).not.toBeNull()
  })
})
