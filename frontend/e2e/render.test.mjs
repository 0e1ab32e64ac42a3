// The browser suite for issue 14's "Rendering and settings": math rendered by KaTeX, per-chat
// generation settings reaching the stand-in, the model's thinking above its answer, and a
// generated title in the chat list. Run: node --test --test-concurrency=1 e2e/render.test.mjs
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ROOT, launchBrowser, signUp, squash, stackDown, stackUp, waitUntil } from './harness.mjs'

const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }
const SHOTS = resolve(ROOT, process.env.E2E_SCREENSHOT_DIR || 'frontend/e2e/.artifacts/screenshots')
const SHOOT = Boolean(process.env.E2E_SCREENSHOT_DIR)

let stack
let browser
let context
let page
let url
let chatPath
const problems = []

function watch(p) {
  p.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  p.on('dialog', (dialog) => {
    problems.push(`dialog opened: ${dialog.message()}`)
    void dialog.dismiss()
  })
  p.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) problems.push(`CSP: ${msg.text()}`)
  })
  return p
}

const composer = (p = page) => p.locator('[data-test=composer]')
const lastReply = (p = page) => p.locator('[data-test=message-assistant]').last()

async function send(text, p = page) {
  const replies = p.locator('[data-test=message-assistant]')
  const before = await replies.count()
  await composer(p).fill(text)
  await composer(p).press('Enter')
  await waitUntil(async () => (await replies.count()) > before, `the reply to "${text.slice(0, 30)}" to appear`)
}

async function completed(p = page) {
  await waitUntil(async () => (await lastReply(p).getAttribute('data-status')) === 'completed', 'the reply to complete', 30_000)
  return lastReply(p)
}

/** What the stand-in received last (its `/_standin/requests` log), for the chat's model. */
async function lastGeminiRequest(model) {
  const response = await fetch(`http://127.0.0.1:${stack.state.ports.standin}/_standin/requests`)
  return (await response.json()).filter((r) => r.model === model).at(-1)
}

before(async () => {
  stack = await stackUp({ STANDIN_CHUNKS: '6', STANDIN_CHUNK_MS: '40' })
  url = stack.url
  await mkdir(SHOTS, { recursive: true })
  browser = await launchBrowser()
  context = await browser.newContext({ viewport: DESKTOP })
  page = watch(await context.newPage())
  await signUp(page, url, 'emmy@example.com')
})

after(async () => {
  await browser?.close()
  if (stack) await stackDown(stack.name)
})

describe('rendering and settings', () => {
  test('the first reply gives the chat a generated title in the chat list', async () => {
    await send('What is the capital of France?')
    await page.waitForURL(/\/c\/[0-9a-f-]+$/)
    chatPath = new URL(page.url()).pathname
    await completed()
    const item = page.locator('[data-test=chat-item]').first()
    // The stand-in's title for this question (gemini-client/standin/replies.py, title_text).
    await waitUntil(async () => squash(await item.innerText()).includes('About What is the capital'), 'the generated title')
    await page.reload()
    await waitUntil(async () => squash(await page.locator('[data-test=chat-item]').first().innerText()).includes('About What is the capital'), 'the title after a reload')
  })

  test('math in a reply is rendered by KaTeX, and injection through it stays inert', async () => {
    await send('Euler: $e^{i\\pi} + 1 = 0$ and \\(a^2+b^2=c^2\\), then $$\\int_0^1 x\\,dx = \\frac{1}{2}$$ and $\\href{javascript:alert(1)}{click}$')
    const reply = await completed()
    await reply.locator('.katex').first().waitFor()
    assert.ok((await reply.locator('.katex').count()) >= 3, 'inline and display math rendered')
    assert.equal(await reply.locator('.katex-display').count(), 1, 'one display formula')
    assert.equal(await reply.locator('a').count(), 0, 'no link out of \\href')
    // The question itself stays plain text.
    const question = page.locator('[data-test=message-user]').last()
    assert.equal(await question.locator('.katex').count(), 0)
    // KaTeX's fonts came from our own origin.
    const fonts = await page.evaluate(() =>
      performance
        .getEntriesByType('resource')
        .map((e) => e.name)
        .filter((n) => /KaTeX_.*\.woff2/.test(n)),
    )
    assert.ok(fonts.length > 0 && fonts.every((f) => f.startsWith(url)), `KaTeX fonts: ${fonts}`)
  })

  test('a settings change reaches Gemini as generationConfig, with the thinking shown above the answer', async () => {
    await page.click('[data-test=open-settings]')
    const dialog = page.locator('[data-test=settings]')
    await dialog.waitFor()
    await dialog.locator('[data-test=temperature]').fill('0.3')
    await dialog.locator('[data-test=max-output-tokens]').fill('512')
    await dialog.locator('[data-test=thinking-budget]').fill('1024')
    await dialog.locator('[data-test=include-thoughts]').check()
    await dialog.locator('[data-test=stop-sequences]').fill('NEVER-SAID')
    await dialog.locator('[data-test=save-settings]').click()
    await dialog.waitFor({ state: 'detached' })

    await send('Think it over [[standin:echo_config]]')
    const reply = await completed()
    const seen = await lastGeminiRequest('gemini-2.5-flash')
    assert.deepEqual(seen.generationConfig, {
      temperature: 0.3,
      maxOutputTokens: 512,
      stopSequences: ['NEVER-SAID'],
      thinkingConfig: { thinking_budget: 1024, include_thoughts: true },
    })
    // The stand-in echoes it into the reply, and sends its thoughts apart from the answer.
    assert.match(squash(await reply.locator('[data-test=message-text]').innerText()), /generationConfig: \{"maxOutputTokens": 512/)
    const thinking = reply.locator('[data-test=thinking]')
    await thinking.waitFor()
    assert.equal(await thinking.getAttribute('open'), null, 'collapsed at first')
    assert.equal(squash(await thinking.locator('summary').innerText()), 'Thoughts')
    assert.ok(!(await reply.locator('[data-test=message-text]').innerText()).includes('Reading the question'), 'thoughts are not in the answer')
    await thinking.locator('summary').click()
    assert.match(squash(await thinking.locator('[data-test=thinking-text]').innerText()), /Reading the question\. The user wrote “Think it over/)
    // Thoughts never go back to Gemini: the next request's history holds only the answers.
    await send('And then?')
    await completed()
    const next = await lastGeminiRequest('gemini-2.5-flash')
    const history = next.contents.flatMap((c) => c.parts.map((p) => p.text)).join('\n')
    assert.ok(!history.includes('Reading the question'), 'no thought in the history')
    assert.ok(next.contents.every((c) => c.parts.every((p) => !p.thought)))
    // The settings stay with the chat.
    await page.reload()
    await page.click('[data-test=open-settings]')
    assert.equal(await page.locator('[data-test=temperature]').inputValue(), '0.3')
    assert.ok(await page.locator('[data-test=include-thoughts]').isChecked())
    await page.keyboard.press('Escape')
  })

  test('out-of-range settings are refused with the reason', async () => {
    await page.click('[data-test=open-settings]')
    const dialog = page.locator('[data-test=settings]')
    await dialog.locator('[data-test=temperature]').fill('7')
    // The browser's own range check is the first line; the server's 422 the second.
    await dialog.locator('[data-test=temperature]').evaluate((el) => el.removeAttribute('max'))
    await dialog.locator('[data-test=save-settings]').click()
    await waitUntil(async () => /temperature/.test(await dialog.locator('[role=alert]').innerText()), 'the 422 shown')
    await page.keyboard.press('Escape')
  })

  test('code blocks wrap long lines on request', async () => {
    await send('```\n' + 'word '.repeat(80) + '\n```')
    const reply = await completed()
    const pre = reply.locator('.code-block pre').first()
    const scrolls = () => pre.evaluate((el) => el.scrollWidth > el.clientWidth)
    assert.ok(await scrolls(), 'a long line scrolls sideways at first')
    await reply.locator('[data-wrap-code]').first().click()
    assert.equal(await reply.locator('[data-wrap-code]').first().getAttribute('aria-pressed'), 'true')
    assert.ok(!(await scrolls()), 'wrapped, nothing to scroll')
  })

  test('screenshots: math, thinking and settings, desktop and phone, light and dark', { skip: !SHOOT }, async () => {
    const storageState = await context.storageState()
    for (const colorScheme of ['light', 'dark']) {
      for (const [device, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
        const shotContext = await browser.newContext({ viewport, colorScheme, storageState, deviceScaleFactor: 1 })
        const p = watch(await shotContext.newPage())
        await p.goto(`${url}${chatPath}`)
        await completed(p)
        await p.locator('.katex').first().waitFor()
        const thinking = p.locator('[data-test=thinking]').first()
        await thinking.locator('summary').click()
        await thinking.scrollIntoViewIfNeeded()
        await p.waitForTimeout(200) // KaTeX's fonts swap in
        await p.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-math-thinking.png` })
        await p.click('[data-test=open-settings]')
        await p.locator('[data-test=generation-settings]').waitFor()
        await p.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-chat-settings.png` })
        await shotContext.close()
      }
    }
  })

  test('no page errors along the way', () => {
    assert.deepEqual(problems, [])
  })
})
