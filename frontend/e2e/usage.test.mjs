// Quotas and usage in the browser: a reply's tokens and latency, the usage page after it, the
// composer's line once the day's messages are spent, and the admins' dashboard; with
// screenshots of each (desktop and phone, light and dark). Run: node --test e2e/usage.test.mjs
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ROOT, launchBrowser, signUp, squash, stackDown, stackUp, waitUntil } from './harness.mjs'

const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }
const SHOTS = resolve(ROOT, process.env.E2E_SCREENSHOT_DIR || 'frontend/e2e/.artifacts/screenshots')
const DAILY_MESSAGES = 3

let stack
let browser
let url
const problems = []

function watch(p) {
  p.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  p.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) problems.push(`CSP: ${msg.text()}`)
  })
  return p
}

const composer = (p) => p.locator('[data-test=composer]')
const lastReply = (p) => p.locator('[data-test=message-assistant]').last()

/** Sends `text` in a new chat and waits for its reply to complete. */
async function ask(p, text) {
  await p.click('[data-test=new-chat]')
  await p.waitForURL(`${url}/`)
  const replies = p.locator('[data-test=message-assistant]')
  await composer(p).fill(text)
  await composer(p).press('Enter')
  await waitUntil(async () => (await replies.count()) > 0, 'the reply to appear')
  await waitUntil(async () => (await lastReply(p).getAttribute('data-status')) === 'completed', 'the reply to complete', 30_000)
}

before(async () => {
  stack = await stackUp({
    USER_MESSAGES_PER_DAY: String(DAILY_MESSAGES),
    // A daily quota per key, so the dashboard has a share of the pool to show.
    KEYS_LIMITS: 'gemini-2.5-flash:30/min,50/day',
    STANDIN_CHUNKS: '4',
    STANDIN_CHUNK_MS: '20',
  })
  url = stack.url
  await mkdir(SHOTS, { recursive: true })
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  if (stack) await stackDown(stack.name)
})

describe('quotas and usage', () => {
  let admin
  let adminState

  test("a reply shows its tokens and latency, and the usage page counts it", async () => {
    const context = await browser.newContext({ viewport: DESKTOP })
    admin = watch(await context.newPage())
    await signUp(admin, url, 'admin@example.com') // the first account: the admin
    await ask(admin, 'How many tokens is this?')
    const row = lastReply(admin).locator('[data-test=message-usage]')
    await row.waitFor()
    const stored = await admin.evaluate(async () => {
      const chatId = location.pathname.split('/').pop()
      return (await (await fetch(`/api/chats/${chatId}/messages`)).json()).at(-1)
    })
    assert.ok(stored.prompt_tokens > 0 && stored.completion_tokens > 0 && stored.latency_ms > 0, JSON.stringify(stored))
    const tokens = stored.prompt_tokens + stored.completion_tokens
    assert.equal(squash(await row.locator('[data-test=message-tokens]').innerText()), `${tokens.toLocaleString('en-US')} tokens`)
    assert.match(await row.locator('[data-test=message-latency]').innerText(), /^· \d+(\.\d)? s$/)
    assert.match(await row.getAttribute('title'), new RegExp(`${stored.prompt_tokens} prompt \\+ ${stored.completion_tokens} reply tokens`))

    await admin.click('[data-test=usage-link]')
    await admin.waitForURL(`${url}/usage`)
    const messages = admin.locator('[data-test=today-messages]')
    await messages.waitFor()
    assert.match(squash(await messages.innerText()), new RegExp(`Messages 1 of ${DAILY_MESSAGES}`))
    assert.match(squash(await admin.locator('[data-test=today-tokens]').innerText()), new RegExp(`Tokens ${tokens.toLocaleString('en-US')} · no daily limit`))
    await admin.locator('[data-test=usage-bars] canvas').waitFor()
    adminState = await context.storageState()
  })

  test("past the day's messages, the composer says when the user can continue", async () => {
    for (let i = 2; i <= DAILY_MESSAGES; i++) await ask(admin, `Question number ${i}`)
    await admin.click('[data-test=new-chat]')
    await admin.waitForURL(`${url}/`)
    await composer(admin).fill('One too many')
    await composer(admin).press('Enter')
    const error = admin.locator('[data-test=send-error]')
    await error.waitFor()
    const text = squash(await error.innerText())
    assert.match(text, new RegExp(`^You have used today's messages \\(${DAILY_MESSAGES} of ${DAILY_MESSAGES}\\)\\. You can continue at \\d\\d:\\d\\d \\(in .+\\)\\.$`))
    // Nothing was sent: the text stays in the composer for later.
    assert.equal(await composer(admin).inputValue(), 'One too many')
  })

  test('the admin dashboard shows usage by user, model and key, and the pool used today', async () => {
    const other = await browser.newContext({ viewport: DESKTOP })
    const bob = watch(await other.newPage())
    await signUp(bob, url, 'bob@example.com')
    await ask(bob, 'Hello from Bob')
    await other.close()

    await admin.click('[data-test=admin-usage-link]')
    await admin.waitForURL(`${url}/admin/usage`)
    const tiles = admin.locator('[data-test=tile-messages]')
    await tiles.waitFor()
    assert.match(squash(await tiles.innerText()), new RegExp(`Messages today ${DAILY_MESSAGES + 1}$`))
    assert.match(squash(await admin.locator('[data-test=tile-users]').innerText()), /Active users today 2$/)
    // Four replies of a 50-a-day quota on each of the stand-in's three keys: 4 of 150.
    assert.match(squash(await admin.locator('[data-test=tile-pool]').innerText()), /Key pool used today 3 %$/)
    const top = admin.locator('[data-test=top-user]')
    assert.equal(await top.count(), 2)
    assert.match(squash(await top.first().innerText()), /^admin@example\.com 3 /)
    assert.match(squash(await top.nth(1).innerText()), /^bob@example\.com 1 /)
    await admin.locator('[data-test=pool-share-chart] canvas').waitFor()
    assert.equal(await admin.locator('[data-test=usage-bars] canvas').count(), 3)
    assert.deepEqual(problems, [])
  })

  test('screenshots of the usage screens', async () => {
    for (const colorScheme of ['light', 'dark']) {
      for (const [device, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
        const context = await browser.newContext({ viewport, colorScheme, storageState: adminState, deviceScaleFactor: 1 })
        const p = watch(await context.newPage())
        const shot = (name) => p.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-${name}.png` })
        await p.goto(`${url}/usage`)
        await p.locator('[data-test=usage-bars] canvas').waitFor()
        await p.waitForTimeout(200) // the chart's first layout
        await shot('usage')
        await p.goto(`${url}/`)
        await composer(p).fill('One too many')
        await composer(p).press('Enter')
        await p.locator('[data-test=send-error]').waitFor()
        await shot('quota-spent')
        await p.goto(`${url}/admin/usage`)
        await p.locator('[data-test=pool-share-chart] canvas').waitFor()
        await p.setViewportSize({ width: viewport.width, height: 1800 })
        await p.waitForTimeout(300) // the charts resize to the taller pane
        await shot('admin-usage')
        await context.close()
      }
    }
    assert.deepEqual(problems, [])
  })
})
