// KaTeX and its CSS and fonts are big next to the rest of the chat, so they come in their own
// chunk, loaded the first time a message looks like it holds math (src/lib/markdown.ts).
import type MarkdownItCtor from 'markdown-it'
import katex from 'katex'
import texmath from 'markdown-it-texmath'
import 'katex/dist/katex.min.css'

export function installMath(md: InstanceType<typeof MarkdownItCtor>): void {
  md.use(texmath, {
    engine: katex,
    // $…$ and $$…$$, \(…\) and \[…\]
    delimiters: ['dollars', 'brackets'],
    katexOptions: {
      // A model's math is untrusted: no \href, \url, \htmlId, \includegraphics and the like.
      trust: false,
      throwOnError: false,
      strict: 'ignore',
      maxSize: 50,
      maxExpand: 1000,
      output: 'htmlAndMathml',
    },
  })
}
