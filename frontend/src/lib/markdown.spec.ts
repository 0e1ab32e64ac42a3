import { describe, expect, it } from 'vitest'
import { renderMarkdown, sanitize } from './markdown'

function dom(html: string): HTMLElement {
  const div = document.createElement('div')
  div.innerHTML = html
  return div
}

describe('renderMarkdown', () => {
  it('renders Markdown', () => {
    const el = dom(renderMarkdown('# Title\n\nSome **bold** and `code`.\n\n- one\n- two'))
    expect(el.querySelector('h1')?.textContent).toBe('Title')
    expect(el.querySelector('strong')?.textContent).toBe('bold')
    expect(el.querySelectorAll('li')).toHaveLength(2)
  })

  it.each([
    '<script>window.pwned = 1</script>',
    '<img src=x onerror="window.pwned=1">',
    '<a href="javascript:alert(1)">x</a>',
    '<svg onload="window.pwned=1"></svg>',
    '<iframe src="https://example.com"></iframe>',
  ])('shows raw HTML as text, never as elements: %s', (payload) => {
    const el = dom(renderMarkdown(`Look: ${payload}`))
    expect(el.querySelector('script, img, iframe, svg, a[href^="javascript"]')).toBeNull()
    expect(el.textContent).toContain(payload)
  })

  it('refuses javascript: links written in Markdown', () => {
    const el = dom(renderMarkdown('[click me](javascript:alert(1)) and [ok](https://example.com)'))
    const links = [...el.querySelectorAll('a')]
    expect(links.map((a) => a.getAttribute('href'))).toEqual(['https://example.com'])
    expect(links[0]?.getAttribute('target')).toBe('_blank')
    expect(links[0]?.getAttribute('rel')).toContain('noopener')
  })

  it('highlights fenced code and gives it a copy button', () => {
    const el = dom(renderMarkdown('```python\ndef f(x):\n    return x  # id\n```'))
    const block = el.querySelector('.code-block')
    expect(block?.querySelector('.code-head span')?.textContent).toBe('python')
    expect(block?.querySelector('button[data-copy-code]')).not.toBeNull()
    expect(block?.querySelector('.hljs-keyword')?.textContent).toBe('def')
    expect(block?.querySelector('code')?.textContent).toBe('def f(x):\n    return x  # id\n')
  })

  it('escapes code in a language it does not know', () => {
    const el = dom(renderMarkdown('```brainfuck\n<b>+++</b>\n```'))
    expect(el.querySelector('code b')).toBeNull()
    expect(el.querySelector('code')?.textContent).toBe('<b>+++</b>\n')
  })
})

describe('sanitize', () => {
  it('strips scripts and event handlers from HTML', () => {
    const el = dom(sanitize('<p onclick="x()">hi<script>x()</script><img src="a.png" onerror="x()"></p>'))
    expect(el.querySelector('script')).toBeNull()
    expect(el.querySelector('[onclick], [onerror]')).toBeNull()
    expect(el.querySelector('img')?.getAttribute('src')).toBe('a.png')
  })
})
