// Search, export and import, share links, in Debian's Chromium against a whole stack:
// import through the Account page, find a message with the search box and land on it, download
// a chat and the whole account, share a chat and open the link signed out, then revoke it.
// Run: node --test --test-concurrency=1 e2e/share.test.mjs (screenshots: E2E_SCREENSHOT_DIR).
import assert from 'node:assert/strict'
import { mkdir, readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ROOT, launchBrowser, signUp, squash, stackDown, stackUp, waitUntil } from './harness.mjs'

const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }
const SHOTS = resolve(ROOT, process.env.E2E_SCREENSHOT_DIR || 'frontend/e2e/.artifacts/screenshots')

let stack
let browser
let context
let page
let url
let sharedUrl
const problems = []

function watch(p) {
  p.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  p.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) problems.push(`CSP: ${msg.text()}`)
  })
  return p
}

/** Our own export format: a long chat whose one message about draining nodes sits in the middle. */
function exportFile() {
  const turns = []
  for (let i = 0; i < 12; i++) {
    turns.push(['user', `Question ${i} about pods and services in the cluster.`])
    turns.push(['assistant', i === 6 ? 'Before the upgrade, run `kubectl drain node-7 --ignore-daemonsets` so the pods move.' : `Answer ${i}: ${'lorem ipsum dolor sit amet '.repeat(12)}`])
  }
  const chain = (pairs) =>
    pairs.map(([role, content], index) => ({
      id: `m${index}`,
      parent_id: index ? `m${index - 1}` : null,
      role,
      content,
      created_at: new Date(Date.UTC(2030, 0, 1, 9, index)).toISOString(),
    }))
  return {
    format: 'gemini-chat-export',
    version: 1,
    chats: [
      { title: 'Kubernetes upgrade notes', model: 'gemini-2.5-flash', messages: chain(turns) },
      { title: 'Soup recipes', messages: chain([['user', 'A leek soup, please'], ['assistant', 'Sweat the leeks in **butter**, add stock, simmer 20 minutes.']]) },
    ],
  }
}

before(async () => {
  stack = await stackUp()
  url = stack.url
  await mkdir(SHOTS, { recursive: true })
  browser = await launchBrowser()
  context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true })
  page = watch(await context.newPage())
  await signUp(page, url, 'grace@example.com')
})

after(async () => {
  await browser?.close()
  if (stack) await stackDown(stack.name)
})

describe('search, export and import, share links', () => {
  test('import a file on the Account page', async () => {
    await page.click('[data-test=account-link]')
    await page.locator('[data-test=data-panel]').waitFor()
    await page.setInputFiles('[data-test=import-file]', {
      name: 'export.json',
      mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify(exportFile())),
    })
    await page.click('[data-test=import]')
    const result = page.locator('[data-test=import-result]')
    await result.waitFor()
    assert.match(squash(await result.innerText()), /Imported 2 chats: Kubernetes upgrade notes Soup recipes/)
    await waitUntil(async () => (await page.locator('[data-test=chat-item]').count()) === 2, 'the imported chats in the list')

    await page.setInputFiles('[data-test=import-file]', { name: 'bad.json', mimeType: 'application/json', buffer: Buffer.from('{"nope": 1}') })
    await page.click('[data-test=import]')
    assert.match(await page.locator('[data-test=import-error]').innerText(), /neither a Gemini Chat export nor a ChatGPT/)
    assert.equal(await page.locator('[data-test=chat-item]').count(), 2, 'a bad file imports nothing')
  })

  test('search as you type, Enter opens the chat at the message', async () => {
    await page.keyboard.press('Control+k')
    const input = page.locator('[data-test=search-input]')
    assert.ok(await input.evaluate((el) => el === document.activeElement), 'Ctrl+K focuses the search box')
    await input.pressSequentially('kubectl dra', { delay: 30 })
    const hit = page.locator('[data-test=search-hit]').first()
    await hit.waitFor()
    assert.match(await hit.innerText(), /Kubernetes upgrade notes/)
    // The words, and the typed text as a substring (here the same span): one mark.
    assert.equal(await hit.locator('mark').first().innerText(), 'kubectl dra')
    await page.keyboard.press('Enter')
    await page.waitForURL(/\/c\/[0-9a-f-]+\?m=[0-9a-f-]+$/)
    const messageId = new URL(page.url()).searchParams.get('m')
    const target = page.locator(`[data-message-id="${messageId}"]`)
    await waitUntil(async () => (await target.getAttribute('class'))?.includes('search-focus'), 'the found message to be highlighted')
    assert.match(await target.innerText(), /kubectl drain node-7/)
    const inView = await target.evaluate((el) => {
      const box = el.getBoundingClientRect()
      return box.top >= 0 && box.bottom <= window.innerHeight
    })
    assert.ok(inView, 'the found message is scrolled into view')
    await page.screenshot({ path: `${SHOTS}/desktop-light-search-opened.png` })

    await input.fill('-kubectl zzzunknown')
    await page.locator('[data-test=search-empty]').waitFor()
    await input.fill('')
  })

  test('export the chat as Markdown and JSON, and the whole account', async () => {
    await page.click('[data-test=chat-menu]')
    const [markdown] = await Promise.all([page.waitForEvent('download'), page.click('[data-test=export-markdown]')])
    assert.equal(markdown.suggestedFilename(), 'kubernetes-upgrade-notes.md')
    const text = await readFile(await markdown.path(), 'utf8')
    assert.ok(text.startsWith('# Kubernetes upgrade notes\n'), text.slice(0, 80))
    assert.match(text, /## Gemini\n\nBefore the upgrade, run `kubectl drain node-7/)

    await page.click('[data-test=chat-menu]')
    const [json] = await Promise.all([page.waitForEvent('download'), page.click('[data-test=export-json]')])
    const document = JSON.parse(await readFile(await json.path(), 'utf8'))
    assert.equal(document.chats[0].messages.length, 24)
    assert.equal(document.chats[0].active_leaf_id, document.chats[0].messages.at(-1).id)

    await page.click('[data-test=account-link]')
    const [all] = await Promise.all([page.waitForEvent('download'), page.click('[data-test=export-all]')])
    const everything = JSON.parse(await readFile(await all.path(), 'utf8'))
    assert.deepEqual(everything.chats.map((c) => c.title).sort(), ['Kubernetes upgrade notes', 'Soup recipes'])
  })

  test('share a chat, open the link signed out, revoke it', async () => {
    await page.locator('[data-test=chat-item] a', { hasText: 'Soup recipes' }).click()
    await page.waitForURL(/\/c\/[0-9a-f-]+$/)
    await page.locator('[data-test=message-assistant]').first().waitFor()
    await page.click('[data-test=chat-menu]')
    await page.click('[data-test=share]')
    await page.click('[data-test=create-share]')
    const field = page.locator('[data-test=share-url]')
    await field.waitFor()
    sharedUrl = await field.inputValue()
    assert.match(sharedUrl, /\/s\/[A-Za-z0-9_-]{43}$/)
    // The link shows as soon as it is made; the list of links is read again just after.
    await waitUntil(async () => (await page.locator('[data-test=share-item]').count()) === 1, 'the new link in the list')
    await page.screenshot({ path: `${SHOTS}/desktop-light-share-dialog.png` })

    const guest = await browser.newContext({ viewport: DESKTOP })
    const g = watch(await guest.newPage())
    await g.goto(sharedUrl)
    await g.locator('[data-test=shared-chat]').waitFor()
    assert.equal(await g.locator('[data-test=shared-title]').innerText(), 'Soup recipes')
    assert.equal(await g.locator('[data-test=shared-user]').innerText(), 'A leek soup, please')
    assert.equal(await g.locator('[data-test=shared-assistant] strong').innerText(), 'butter')
    assert.ok(!(await g.content()).includes('grace@example.com'), 'the owner is not named')
    assert.equal(await g.locator('[data-test=composer]').count(), 0, 'read-only')
    assert.equal(new URL(g.url()).pathname, new URL(sharedUrl).pathname, 'no sign-in needed')

    await page.click('[data-test=revoke-share]')
    await waitUntil(async () => (await page.locator('[data-test=share-item]').count()) === 0, 'the link to leave the list')
    await g.reload()
    await g.locator('[data-test=shared-missing]').waitFor()
    await guest.close()
    await page.keyboard.press('Escape')
  })

  test('screenshots of the new screens', async () => {
    // A live link for the shared page's screenshots.
    await page.click('[data-test=chat-menu]')
    await page.click('[data-test=share]')
    await page.click('[data-test=create-share]')
    await page.locator('[data-test=share-url]').waitFor()
    sharedUrl = await page.locator('[data-test=share-url]').inputValue()
    await page.keyboard.press('Escape')
    const chatPath = new URL(page.url()).pathname
    const storageState = await context.storageState()
    for (const colorScheme of ['light', 'dark']) {
      for (const [device, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
        const shotContext = await browser.newContext({ viewport, colorScheme, storageState, deviceScaleFactor: 1 })
        const p = watch(await shotContext.newPage())
        const shot = (name) => p.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-${name}.png` })
        await p.goto(`${url}${chatPath}`)
        await p.locator('[data-test=message-assistant]').first().waitFor()
        if (device === 'phone') {
          await p.click('[aria-label="Open the chat list"]')
          await p.waitForTimeout(300) // the drawer's slide-in transition, 200 ms
        }
        await p.locator('[data-test=search-input]').fill('pods')
        await p.locator('[data-test=search-hit]').first().waitFor()
        await shot('search')
        await p.locator('[data-test=search-input]').fill('')
        if (device === 'phone') {
          await p.goto(`${url}${chatPath}`)
          await p.locator('[data-test=message-assistant]').first().waitFor()
        }
        await p.click('[data-test=chat-menu]')
        await shot('chat-menu')
        await p.click('[data-test=share]')
        await p.locator('[data-test=share-item]').first().waitFor()
        await shot('share-dialog')
        await p.goto(`${url}/account`)
        await p.locator('[data-test=data-panel]').scrollIntoViewIfNeeded()
        await shot('account-data')
        await shotContext.close()

        const guest = await browser.newContext({ viewport, colorScheme, deviceScaleFactor: 1 })
        const g = watch(await guest.newPage())
        await g.goto(sharedUrl)
        await g.locator('[data-test=shared-chat]').waitFor()
        await g.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-shared.png` })
        await guest.close()
      }
    }
  })

  test('no page errors and no CSP violations', () => {
    assert.deepEqual(problems, [])
  })
})
