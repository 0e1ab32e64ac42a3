// The browser suite: one person's whole journey through the real stack, a second person who
// must not see it, and screenshots of the main screens. Run: node --test e2e/ (make test-e2e).
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { PASSWORD, ROOT, launchBrowser, restartComponent, signUp, squash, stackDown, stackUp, standinDials, waitUntil } from './harness.mjs'

const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }
const SHOTS = resolve(ROOT, process.env.E2E_SCREENSHOT_DIR || 'frontend/e2e/.artifacts/screenshots')

let stack
let browser
let context
let page
let url
let firstChatId
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
const statusOf = (reply) => reply.getAttribute('data-status')
const textOf = async (reply) => {
  const text = reply.locator('[data-test=message-text]')
  return (await text.count()) ? squash(await text.innerText()) : ''
}
const chatIdOf = (p = page) => new URL(p.url()).pathname.match(/^\/c\/([0-9a-f-]+)$/)?.[1]

async function storedMessages(chatId, p = page) {
  return p.evaluate(async (id) => {
    const response = await fetch(`/api/chats/${id}/messages`)
    return { status: response.status, body: await response.json() }
  }, chatId)
}

/** Sends `text` and waits until its reply is on the page (so `lastReply()` is that reply). */
async function send(text, p = page) {
  const replies = p.locator('[data-test=message-assistant]')
  const before = await replies.count()
  await composer(p).fill(text)
  await composer(p).press('Enter')
  await waitUntil(async () => (await replies.count()) > before, `the reply to "${text.slice(0, 30)}" to appear`)
}

/**
 * Waits for the last reply to reach `status` and to show what PostgreSQL stored (as plain
 * text: `sameText` off for replies whose Markdown adds text, such as a code block's header).
 */
async function settledReply(status, { sameText = true, timeoutMs = 30_000 } = {}) {
  const reply = lastReply()
  await waitUntil(async () => (await statusOf(reply)) === status, `the reply to be ${status}`, timeoutMs)
  const chatId = chatIdOf()
  return waitUntil(async () => {
    const stored = (await storedMessages(chatId)).body.at(-1)
    const shown = await textOf(reply)
    return stored.status === status && (!sameText || squash(stored.content) === shown) && { stored, shown }
  }, `the shown ${status} reply to equal the stored one`)
}

before(async () => {
  // Slow enough to reload mid-reply and to press Stop: 40 chunks, 150 ms apart.
  stack = await stackUp({ STANDIN_CHUNKS: '40', STANDIN_CHUNK_MS: '150', STANDIN_FIRST_CHUNK_MS: '300' })
  url = stack.url
  await mkdir(SHOTS, { recursive: true })
  browser = await launchBrowser()
  context = await browser.newContext({ viewport: DESKTOP })
  page = watch(await context.newPage())
})

after(async () => {
  await browser?.close()
  if (stack) await stackDown(stack.name)
})

describe('one person, start to finish', () => {
  test('sign up, and the session survives a reload', async () => {
    await signUp(page, url, 'ada@example.com')
    await page.reload()
    await composer().waitFor()
    assert.equal(new URL(page.url()).pathname, '/')
    assert.match(await page.locator('.who .email').innerText(), /ada@example.com/)
    assert.ok(await page.locator('[data-test=empty-chat]').isVisible(), 'the new-chat page greets')
  })

  test('the reply streams in piece by piece and is saved', async () => {
    await send('Hello there')
    await page.waitForURL(/\/c\/[0-9a-f-]+$/)
    firstChatId = chatIdOf()
    assert.equal(await page.locator('[data-test=message-user] [data-test=message-text]').last().innerText(), 'Hello there')
    await waitUntil(async () => (await composer().inputValue()) === '', 'the composer to be emptied once sent')

    const reply = lastReply()
    const lengths = new Set()
    await waitUntil(async () => {
      const status = await statusOf(reply)
      if (status === 'streaming') lengths.add((await textOf(reply)).length)
      return status === 'completed'
    }, 'the reply to complete', 30_000, 40)
    assert.ok(lengths.size >= 5, `text grew in steps while streaming (saw ${lengths.size} lengths)`)

    const { stored } = await settledReply('completed')
    assert.match(stored.content, /^Echo: Hello there\n/)
    assert.ok(await page.locator('[data-test=regenerate]').isVisible(), 'the last reply offers Regenerate')
    // The sidebar names the chat after its first message.
    assert.equal(await page.locator('[data-test=chat-item]').first().innerText(), 'Hello there')
  })

  test('a reload mid-reply shows the text so far and carries on', async (t) => {
    // Slower still (80 chunks, 20 s), so the reply is surely unfinished when the page is back.
    await standinDials(stack, { chunks: 80, chunk_ms: 250 })
    t.after(() => standinDials(stack, { chunks: 40, chunk_ms: 150 }))
    await send('Tell me more')
    const reply = lastReply()
    const before = await waitUntil(async () => {
      const text = await textOf(reply)
      return (await statusOf(reply)) === 'streaming' && text.length > 30 && text
    }, 'the reply to be well under way')
    await page.reload()

    const resumed = lastReply()
    let last = ''
    const seen = await waitUntil(async () => {
      const text = await textOf(resumed)
      const status = await statusOf(resumed)
      last = `${status}, ${text.length} characters`
      return status === 'streaming' && text.length >= before.length && text
    }, 'the reply to show again, still streaming, after the reload').catch((err) => {
      throw new Error(`${err.message}; last seen: ${last}; before the reload: ${before.length} characters`)
    })
    assert.ok(seen.startsWith(before), 'no gap: the text after the reload begins with what was there')

    const { stored } = await settledReply('completed')
    assert.match(stored.content, /^Echo: Tell me more\n/)
    assert.equal(stored.content.split('Echo: ').length, 2, 'no duplicated text')
  })

  test('Stop cancels the reply, Retry writes it again', async () => {
    await send('Count to ten')
    const reply = lastReply()
    await waitUntil(async () => (await statusOf(reply)) === 'streaming' && (await textOf(reply)).length > 10, 'streaming text')
    assert.equal(await page.locator('[data-test=composer-reason]').innerText(), 'Wait for the reply to finish, or stop it.')
    await page.click('[data-test=stop]')

    const { stored: cancelled } = await settledReply('cancelled')
    assert.match(cancelled.content, /^Echo: Count to ten/)
    assert.match(await reply.locator('[data-test=reply-status]').innerText(), /Cancelled/)
    assert.ok(await page.locator('[data-test=send]').isVisible(), 'the composer can send again')

    await reply.locator('[data-test=retry]').click()
    await waitUntil(async () => ['pending', 'streaming'].includes(await statusOf(lastReply())), 'the retry to start')
    const { stored: redone } = await settledReply('completed')
    assert.ok(redone.content.length > cancelled.content.length, 'the retried reply is complete')
    assert.match(redone.content, /^Echo: Count to ten\n/)
  })

  test('Google answers 503: a countdown to the next attempt, and Stop ends the wait', async (t) => {
    // Three 503s: the first call and the worker's two quick tries on other keys.
    await standinDials(stack, { faults: [{ kind: '503', count: 3 }] })
    // Whatever happens here, leave no reply waiting a minute for the tests after this one.
    t.after(async () => {
      if (await page.locator('[data-test=stop]').isVisible()) await page.click('[data-test=stop]')
    })
    await send('Are you there?')
    const reply = lastReply()
    const status = reply.locator('[data-test=reply-status]')
    const text = await waitUntil(async () => (await statusOf(reply)) === 'retrying' && (await status.innerText()), 'the retrying state')
    const seconds = Number(text.match(/retrying in (\d+) s, attempt (\d+)/)?.[1])
    assert.ok(seconds > 10 && seconds <= 65, `a countdown to the first retry delay (60 s): "${text}"`)
    await waitUntil(async () => (await status.innerText()) !== text, 'the countdown to tick')
    await page.screenshot({ path: `${SHOTS}/desktop-light-retrying.png` })

    await page.click('[data-test=stop]')
    await settledReply('cancelled')
  })

  test('Google refuses the request: the failure says why, and Retry works', async () => {
    await standinDials(stack, { faults: [{ kind: '400', count: 1 }] })
    await send('Please fail once')
    const { stored } = await settledReply('failed')
    assert.ok(stored.error, 'the stored reply has an error')
    const shown = await lastReply().locator('[data-test=reply-status]').innerText()
    assert.equal(shown, `Failed: ${stored.error}`)
    assert.doesNotMatch(shown, /Traceback|standin-key|key=/i)
    await page.screenshot({ path: `${SHOTS}/desktop-light-failed.png` })

    await lastReply().locator('[data-test=retry]').click()
    const { stored: redone } = await settledReply('completed')
    assert.match(redone.content, /^Echo: Please fail once\n/)
  })

  test('the backend restarts mid-reply: the stream reconnects and loses nothing', async (t) => {
    await standinDials(stack, { chunk_ms: 300 })
    t.after(() => standinDials(stack, { chunk_ms: 150 }))
    await send('Survive a restart')
    const reply = lastReply()
    await waitUntil(async () => (await statusOf(reply)) === 'streaming' && (await textOf(reply)).length > 20, 'the reply to stream')

    let sawReconnecting = false
    const watching = setInterval(() => {
      page.locator('[data-test=reconnecting]').isVisible().then((visible) => {
        sawReconnecting ||= visible
      }, () => undefined)
    }, 50)
    try {
      await restartComponent(stack, 'backend')
    } finally {
      clearInterval(watching)
    }
    assert.ok(sawReconnecting, 'the page said it was reconnecting')

    const { stored } = await settledReply('completed')
    assert.match(stored.content, /^Echo: Survive a restart\n/)
    await page.locator('[data-test=reconnecting]').waitFor({ state: 'detached' })
  })

  test('offline and back: the page says so, then is up to date', async (t) => {
    await send('Going offline')
    await waitUntil(async () => (await statusOf(lastReply())) === 'streaming', 'the reply to stream')
    await context.setOffline(true)
    t.after(() => context.setOffline(false))
    await page.locator('.offline-banner').waitFor()
    await context.setOffline(false)
    await page.locator('.offline-banner').waitFor({ state: 'detached' })
    const { stored } = await settledReply('completed')
    assert.match(stored.content, /^Echo: Going offline\n/)
  })

  test('rename inline, and the name sticks', async () => {
    const item = page.locator('[data-test=chat-item].active')
    await item.locator('[data-test=rename]').click()
    const input = page.locator('[data-test=rename-input]')
    await input.fill('Renamed chat')
    await input.press('Enter')
    await waitUntil(async () => (await page.locator('[data-test=chat-title]').innerText()) === 'Renamed chat', 'the new title')
    await page.reload()
    await waitUntil(async () => (await page.locator('[data-test=chat-item].active').innerText()) === 'Renamed chat', 'the title after a reload')
  })

  test('an XSS payload stays inert', async () => {
    await page.click('[data-test=new-chat]')
    await page.waitForURL(`${url}/`)
    const payload = '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> [x](javascript:window.__xss=3)'
    await send(payload)
    await page.waitForURL(/\/c\/[0-9a-f-]+$/)
    const { stored } = await settledReply('completed')
    assert.ok(stored.content.includes('onerror'), 'the stand-in echoed the payload back')

    assert.equal(await page.locator('[data-test=message-user] [data-test=message-text]').last().innerText(), payload)
    const messages = page.locator('.messages')
    assert.equal(await messages.locator('img, script, iframe, [onerror]').count(), 0)
    assert.equal(await messages.locator('a[href^="javascript"]').count(), 0)
    assert.equal(await page.evaluate(() => window.__xss), undefined)
  })

  test('back and forward move between the chats in the URL', async () => {
    const secondChatId = chatIdOf()
    await page.goBack()
    await page.waitForURL(`${url}/`)
    await page.goBack()
    await page.waitForURL(`${url}/c/${firstChatId}`)
    await waitUntil(async () => (await page.locator('[data-test=message-user] [data-test=message-text]').first().innerText()) === 'Hello there', 'the first chat')
    await page.goForward()
    await page.goForward()
    await page.waitForURL(`${url}/c/${secondChatId}`)
    await waitUntil(async () => (await page.locator('[data-test=message-user]').count()) === 1, 'the second chat')
  })

  test('per-chat settings: model and system prompt reach the model', async () => {
    await page.click('[data-test=open-settings]')
    await page.selectOption('[data-test=model]', 'gemini-2.5-pro')
    await page.fill('[data-test=system-prompt]', 'Answer like a pirate.')
    await page.click('[data-test=save-settings]')
    await page.locator('[data-test=settings]').waitFor({ state: 'detached' })
    await waitUntil(async () => (await page.locator('.model-pill').innerText()) === 'gemini-2.5-pro', 'the header to show the new model')

    await send('Ahoy')
    const { stored } = await settledReply('completed')
    assert.equal(stored.model, 'gemini-2.5-pro')
    assert.match(stored.content, /system: Answer like a pirate\./)

    // Regenerate the last reply: a new version in its place, to the same (deterministic) text;
    // the old one stays, one ‹ › step away (e2e/tree.test.mjs follows that further).
    const count = await page.locator('[data-test=message-assistant]').count()
    await lastReply().locator('[data-test=regenerate]').click()
    await waitUntil(async () => ['pending', 'streaming'].includes(await statusOf(lastReply())), 'the regeneration to start')
    const { stored: again } = await settledReply('completed')
    assert.notEqual(again.id, stored.id)
    assert.deepEqual(again.sibling_ids, [stored.id, again.id])
    assert.equal(again.content, stored.content)
    assert.equal(await page.locator('[data-test=message-assistant]').count(), count)

    await page.reload()
    // The dialog takes the chat's settings when it opens: wait for the chat to have loaded.
    await waitUntil(async () => (await page.locator('.model-pill').innerText()) === 'gemini-2.5-pro', 'the chat to load')
    await page.click('[data-test=open-settings]')
    assert.equal(await page.locator('[data-test=model]').inputValue(), 'gemini-2.5-pro')
    assert.equal(await page.locator('[data-test=system-prompt]').inputValue(), 'Answer like a pirate.')
    await page.keyboard.press('Escape')
    await page.locator('[data-test=settings]').waitFor({ state: 'detached' })
  })

  test('the admin page shows the key pool, and no key', async () => {
    await page.click('[data-test=admin-link]')
    await page.waitForURL(`${url}/admin`)
    const rows = page.locator('[data-test=key-row]')
    await waitUntil(async () => (await rows.count()) === 3, 'three keys')
    const states = await rows.locator('[data-test=key-state]').allInnerTexts()
    assert.ok(states.every((s) => ['active', 'cooling', 'disabled'].includes(s)), states.join())
    const requests = await rows.locator('[data-test=key-requests]').allInnerTexts()
    assert.ok(requests.map((r) => Number.parseInt(r, 10)).reduce((a, b) => a + b, 0) >= 5, `requests counted: ${requests}`)
    assert.ok(!(await page.content()).includes('standin-key-'), 'no key text on the page')
    await page.locator('[data-test=usage-chart] canvas').waitFor()
  })

  test('an admin adds a key: checked with Google, listed, never shown; a bad one says why', async () => {
    const rows = page.locator('[data-test=key-row]')
    const badKey = 'AIzaSy-e2e-bad-key-0123456789abcdef'
    await standinDials(stack, { invalid_keys: [badKey] })
    await page.fill('[data-test=new-key]', badKey)
    await page.click('[data-test=add-key-submit]')
    const refused = await page.locator('[data-test=add-error]').innerText()
    assert.match(refused, /not valid/)
    assert.ok(!refused.includes(badKey), 'the refused key is not echoed')

    const newKey = 'AIzaSy-e2e-new-key-0123456789abcdef'
    await page.fill('[data-test=new-key]', newKey)
    await page.fill('[data-test=new-label]', 'added in e2e')
    await page.click('[data-test=add-key-submit]')
    await page.locator('[data-test=added]').waitFor()
    await waitUntil(async () => (await rows.count()) === 4, 'the new key listed')
    const added = rows.filter({ hasText: 'added in e2e' })
    assert.equal(await added.locator('[data-test=key-state]').innerText(), 'active')
    assert.equal(await page.inputValue('[data-test=new-key]'), '')
    assert.ok(!(await page.content()).includes(newKey), 'no key text on the page')

    // The workers take it up within seconds: with the three other keys disabled, it alone answers.
    const newId = await added.getAttribute('data-key-id')
    const api = (method, path, body) =>
      page.evaluate(
        async ([m, p, b]) => {
          const r = await fetch(`/api${p}`, { method: m, headers: { 'Content-Type': 'application/json' }, body: b ? JSON.stringify(b) : undefined })
          return { status: r.status, body: r.status === 204 ? null : await r.json() }
        },
        [method, path, body],
      )
    // Every worker reloads the registry within about a second: its published capacity then
    // counts four keys (the default model's limit each).
    const capacity = async () => (await api('GET', '/admin/pool')).body.capacity['gemini-2.5-flash']?.per_minute ?? 0
    const perKey = (await api('GET', '/admin/keys')).body[0].models.find((m) => m.model === 'gemini-2.5-flash').limit_per_minute
    await waitUntil(async () => (await capacity()) >= 4 * perKey, 'the workers to take up the new key', 20_000, 200)
    const others = (await api('GET', '/admin/keys')).body.filter((k) => k.id !== newId).map((k) => k.id)
    for (const id of others) assert.equal((await api('PATCH', `/admin/keys/${id}`, { disabled: true })).status, 200)
    const stats = async () => (await fetch(`http://127.0.0.1:${stack.state.ports.standin}/_standin/stats`)).json()
    const before = (await stats()).calls[newId] ?? 0
    const chat = (await api('POST', '/chats', {})).body
    const sent = (await api('POST', `/chats/${chat.id}/messages`, { content: 'only the new key', role: 'user' })).body
    await waitUntil(
      async () => (await api('GET', `/chats/${chat.id}/messages`)).body.find((m) => m.id === sent.assistant_message.id)?.status === 'completed',
      'the reply served by the new key',
      30_000,
    )
    assert.ok(((await stats()).calls[newId] ?? 0) > before, 'the stand-in saw the new key')
    for (const id of others) assert.equal((await api('PATCH', `/admin/keys/${id}`, { disabled: false })).status, 200)
    assert.equal((await api('DELETE', `/chats/${chat.id}`)).status, 204)

    // Disabling asks first; then the key says why it is out of the pool.
    await added.locator('[data-test=disable]').click()
    await page.click('[data-test=confirm]')
    await waitUntil(async () => (await added.locator('[data-test=key-reason]').innerText()) === 'disabled by an admin', 'the key disabled')
    await added.locator('[data-test=remove]').click()
    await page.click('[data-test=confirm]')
    await waitUntil(async () => (await rows.count()) === 3, 'the key removed')
  })

  test('screenshots of the main screens', async () => {
    await page.click('[data-test=new-chat]')
    await page.waitForURL(`${url}/`)
    await send('Show me a tiny Python function, please:\n\n```python\ndef greet(name: str) -> str:\n    return f"Hello, {name}!"\n```')
    await page.waitForURL(/\/c\/[0-9a-f-]+$/)
    await waitUntil(async () => (await statusOf(lastReply())) === 'streaming' && (await textOf(lastReply())).length > 60, 'a reply half written')
    await page.screenshot({ path: `${SHOTS}/desktop-light-streaming.png` })
    await settledReply('completed', { sameText: false })
    const chatPath = new URL(page.url()).pathname
    const storageState = await context.storageState()

    for (const colorScheme of ['light', 'dark']) {
      for (const [device, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
        const shotContext = await browser.newContext({ viewport, colorScheme, storageState, deviceScaleFactor: 1 })
        const p = watch(await shotContext.newPage())
        const shot = (name) => p.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-${name}.png` })
        await p.goto(`${url}${chatPath}`)
        await waitUntil(async () => (await statusOf(lastReply(p))) === 'completed', 'the chat to load')
        await p.locator('.code-block').first().waitFor()
        await shot('chat')
        if (device === 'phone') {
          await p.click('[aria-label="Open the chat list"]')
          await p.waitForTimeout(300) // the drawer's slide-in transition, 200 ms
          await shot('sidebar')
        } else {
          await p.goto(`${url}/`)
          await p.locator('[data-test=empty-chat]').waitFor()
          await shot('new-chat')
        }
        await p.goto(`${url}/admin`)
        await p.locator('[data-test=key-row]').first().waitFor()
        await p.locator('[data-test=usage-chart] canvas').waitFor()
        await shot('admin')
        // The page scrolls inside its own pane: a tall window shows all of it.
        await p.setViewportSize({ width: viewport.width, height: 2000 })
        await p.waitForTimeout(300) // the chart resizes to the new pane
        await shot('admin-full')
        await shotContext.close()
        const guest = await browser.newContext({ viewport, colorScheme })
        const g = watch(await guest.newPage())
        await g.goto(`${url}/signin`)
        await g.locator('input[name=email]').waitFor()
        await g.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-signin.png` })
        await guest.close()
      }
    }
  })

  test('delete asks first, then removes the chat', async () => {
    const item = page.locator('[data-test=chat-item].active')
    const title = await item.innerText()
    const before = await page.locator('[data-test=chat-item]').count()
    await item.locator('[data-test=delete]').click()
    await page.locator('[role=alertdialog]').waitFor()
    await page.keyboard.press('Escape')
    assert.equal(await page.locator('[data-test=chat-item]').count(), before, 'Escape keeps it')

    await item.locator('[data-test=delete]').click()
    await page.click('[data-test=confirm]')
    await page.waitForURL(`${url}/`)
    await waitUntil(async () => (await page.locator('[data-test=chat-item]').count()) === before - 1, 'the chat to go')
    assert.ok(!(await page.locator('[data-test=chat-item]').allInnerTexts()).includes(title))
  })

  test('a second person sees none of it', async () => {
    const other = await browser.newContext({ viewport: DESKTOP })
    const p = watch(await other.newPage())
    await signUp(p, url, 'bob@example.com')
    await p.locator('.chat-list').getByText('No chats yet').waitFor()
    assert.equal(await p.locator('[data-test=admin-link]').count(), 0, 'only the first user is admin')
    assert.equal((await storedMessages(firstChatId, p)).status, 404)
    await p.goto(`${url}/c/${firstChatId}`)
    await p.locator('[data-test=chat-missing]').waitFor()
    await p.goto(`${url}/admin`)
    await p.waitForURL(`${url}/`)
    await other.close()
  })

  test('the account page changes the password and logs out everywhere', async () => {
    const NEW_PASSWORD = 'a brand new passphrase'
    const signIn = async (p, password) => {
      await p.goto(`${url}/signin`)
      await p.fill('input[name=email]', 'ada@example.com')
      await p.fill('input[name=password]', password)
      await p.click('button[type=submit]')
      await p.waitForURL(`${url}/`)
    }
    const me = (p) => p.evaluate(async () => (await fetch('/api/auth/me')).status)
    const laptop = await browser.newContext({ viewport: DESKTOP })
    const other = watch(await laptop.newPage())
    await signIn(other, PASSWORD)

    await page.click('[data-test=account-link]')
    await page.waitForURL(`${url}/account`)
    assert.match(await page.locator('[data-test=account-email]').innerText(), /ada@example.com/)
    const storageState = await context.storageState()
    for (const colorScheme of ['light', 'dark']) {
      for (const [device, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
        const shotContext = await browser.newContext({ viewport, colorScheme, storageState, deviceScaleFactor: 1 })
        const p = watch(await shotContext.newPage())
        await p.goto(`${url}/account`)
        await p.locator('[data-test=password-form]').waitFor()
        await p.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-account.png` })
        await shotContext.close()
      }
    }

    await page.fill('input[name=current-password]', 'not my password')
    await page.fill('input[name=new-password]', NEW_PASSWORD)
    await page.fill('input[name=repeat-password]', NEW_PASSWORD)
    await page.click('[data-test=change-password]')
    await page.getByRole('alert').filter({ hasText: 'The current password is wrong.' }).waitFor()
    await page.fill('input[name=current-password]', PASSWORD)
    await page.fill('input[name=new-password]', NEW_PASSWORD)
    await page.fill('input[name=repeat-password]', NEW_PASSWORD)
    await page.click('[data-test=change-password]')
    await page.locator('[data-test=password-changed]').waitFor()
    assert.equal(await me(page), 200, 'the session that changed the password stays')
    assert.equal(await me(other), 401, 'the other session ended')
    await other.reload()
    await other.waitForURL(/\/signin/)

    await signIn(other, NEW_PASSWORD)
    await page.click('[data-test=logout-all]')
    await page.locator('[data-test=confirm]').click()
    await page.waitForURL(/\/signin/)
    assert.equal(await me(page), 401)
    assert.equal(await me(other), 401, 'every session ended')
    await laptop.close()
    await signIn(page, NEW_PASSWORD)
  })

  test('sign out, and the chats are closed to the signed-out browser', async () => {
    await page.click('[data-test=sign-out]')
    await page.waitForURL(/\/signin/)
    await page.goto(`${url}/c/${firstChatId}`)
    await page.waitForURL(/\/signin\?next=/)
    assert.equal((await storedMessages(firstChatId)).status, 401)
  })

  test('nothing ran that should not have', () => {
    assert.deepEqual(problems, [])
  })
})
