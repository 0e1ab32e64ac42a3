// Assistant replies are Markdown from a model, so treat them as untrusted: markdown-it with raw
// HTML off, then DOMPurify over the result, so no script or event handler can reach the page.
import DOMPurify from 'dompurify'
import MarkdownIt from 'markdown-it'
import hljs from 'highlight.js/lib/core'
import bash from 'highlight.js/lib/languages/bash'
import css from 'highlight.js/lib/languages/css'
import go from 'highlight.js/lib/languages/go'
import java from 'highlight.js/lib/languages/java'
import javascript from 'highlight.js/lib/languages/javascript'
import json from 'highlight.js/lib/languages/json'
import python from 'highlight.js/lib/languages/python'
import rust from 'highlight.js/lib/languages/rust'
import sql from 'highlight.js/lib/languages/sql'
import typescript from 'highlight.js/lib/languages/typescript'
import xml from 'highlight.js/lib/languages/xml'
import yaml from 'highlight.js/lib/languages/yaml'
import { ref } from 'vue'

const languages = { bash, css, go, java, javascript, json, python, rust, sql, typescript, xml, yaml }
for (const [name, language] of Object.entries(languages)) hljs.registerLanguage(name, language)
hljs.registerAliases(['sh', 'shell', 'zsh'], { languageName: 'bash' })
hljs.registerAliases(['js', 'jsx', 'mjs'], { languageName: 'javascript' })
hljs.registerAliases(['ts', 'tsx'], { languageName: 'typescript' })
hljs.registerAliases(['py'], { languageName: 'python' })
hljs.registerAliases(['html', 'vue', 'svg'], { languageName: 'xml' })
hljs.registerAliases(['yml'], { languageName: 'yaml' })
hljs.registerAliases(['rs'], { languageName: 'rust' })

const md = new MarkdownIt({ html: false, linkify: true, breaks: false })

/** A highlighted code block with a header naming the language and a copy button. */
function codeBlock(code: string, lang: string): string {
  const known = lang !== '' && hljs.getLanguage(lang) !== undefined
  const body = known
    ? hljs.highlight(code, { language: lang, ignoreIllegals: true }).value
    : md.utils.escapeHtml(code)
  return (
    `<div class="code-block"><div class="code-head"><span>${md.utils.escapeHtml(lang || 'text')}</span>` +
    `<span class="code-tools"><button type="button" class="copy-code" data-wrap-code aria-pressed="false" aria-label="Wrap long lines">Wrap</button>` +
    `<button type="button" class="copy-code" data-copy-code aria-label="Copy code">Copy</button></span></div>` +
    `<pre><code class="hljs">${body}</code></pre></div>`
  )
}

md.renderer.rules.fence = (tokens, idx) => {
  const token = tokens[idx]
  if (!token) return ''
  const lang = token.info.trim().split(/\s+/)[0] ?? ''
  return codeBlock(token.content, lang.toLowerCase())
}
md.renderer.rules.code_block = (tokens, idx) => codeBlock(tokens[idx]?.content ?? '', '')

// Links open in a new tab without handing it our window.
const defaultLinkOpen =
  md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options))
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  const token = tokens[idx]
  if (token) {
    token.attrSet('target', '_blank')
    token.attrSet('rel', 'noopener noreferrer nofollow')
  }
  return defaultLinkOpen(tokens, idx, options, env, self)
}

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.getAttribute('target') === '_blank') {
    node.setAttribute('rel', 'noopener noreferrer nofollow')
  }
})

export function sanitize(html: string): string {
  return DOMPurify.sanitize(html, {
    ADD_ATTR: ['target'],
    FORBID_TAGS: ['style', 'form', 'input', 'textarea', 'select'],
  })
}

// Math is rendered once KaTeX has loaded; `mathVersion` changes then, so views render again.
const MATH_HINT = /\$|\\\(|\\\[/
export const mathVersion = ref(0)
let mathLoading: Promise<void> | null = null

export function loadMath(): Promise<void> {
  mathLoading ??= import('./math').then(({ installMath }) => {
    installMath(md)
    mathVersion.value += 1
  })
  return mathLoading
}

export function renderMarkdown(source: string): string {
  if (mathLoading === null && MATH_HINT.test(source)) void loadMath()
  return sanitize(md.render(source))
}
