// The message tree in the browser: edit a question, see the new answer, flip back and forth
// with ‹ ›, regenerate an earlier reply, and a reload keeps the branch shown. Screenshots of
// the versions and the inline editor. Run: node --test e2e/tree.test.mjs
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
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
let chatPath
const problems = []

const questions = (p = page) => p.locator('[data-test=message-user]')
const replies = (p = page) => p.locator('[data-test=message-assistant]')
const textsOf = async (locator) => (await locator.locator('[data-test=message-text]').allInnerTexts()).map(squash)

/** Waits until the page shows exactly these questions, each answered and the answers complete. */
async function showsBranch(expected, p = page) {
  return waitUntil(async () => {
    const shown = await textsOf(questions(p))
    const statuses = await replies(p).evaluateAll((els) => els.map((el) => el.getAttribute('data-status')))
    const answers = await textsOf(replies(p))
    const answered = answers.length === expected.length && answers.every((a, i) => a.startsWith(`Echo: ${expected[i]}`))
    return JSON.stringify(shown) === JSON.stringify(expected) && statuses.every((s) => s === 'completed') && answered && answers
  }, `the branch ${JSON.stringify(expected)} to be shown and answered`, 30_000)
}

async function send(text) {
  const count = await replies().count()
  await page.locator('[data-test=composer]').fill(text)
  await page.locator('[data-test=composer]').press('Enter')
  await waitUntil(async () => (await replies().count()) > count, `the reply to "${text}" to appear`)
}

before(async () => {
  stack = await stackUp({ STANDIN_CHUNKS: '6', STANDIN_CHUNK_MS: '60' })
  url = stack.url
  await mkdir(SHOTS, { recursive: true })
  browser = await launchBrowser()
  context = await browser.newContext({ viewport: DESKTOP })
  page = await context.newPage()
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
})

after(async () => {
  await browser?.close()
  if (stack) await stackDown(stack.name)
})

describe('edit, regenerate and switch branches', () => {
  test('a chat of two questions', async () => {
    await signUp(page, url, 'tree@example.com')
    await send('First question')
    await page.waitForURL(/\/c\/[0-9a-f-]+$/)
    chatPath = new URL(page.url()).pathname
    await showsBranch(['First question'])
    await send('Second question')
    await showsBranch(['First question', 'Second question'])
    assert.equal(await page.locator('[data-test=branch-nav]').count(), 0, 'no versions yet')
  })

  test('editing a question answers the new text and keeps the old one', async () => {
    const second = questions().last()
    await second.locator('[data-test=edit]').click()
    const editor = second.locator('[data-test=message-editor-text]')
    assert.equal(await editor.inputValue(), 'Second question')
    assert.ok(await editor.evaluate((el) => el === document.activeElement), 'the editor has the focus')
    // Cancel puts the question back untouched.
    await editor.fill('never sent')
    await second.locator('[data-test=edit-cancel]').click()
    assert.equal(squash(await second.locator('[data-test=message-text]').innerText()), 'Second question')

    await second.locator('[data-test=edit]').click()
    await second.locator('[data-test=message-editor-text]').fill('Second question, edited')
    await second.locator('[data-test=edit-save]').click()
    await showsBranch(['First question', 'Second question, edited'])
    assert.equal(squash(await questions().last().locator('[data-test=branch-count]').innerText()), '2 / 2')
    // The model heard only this branch: the question, its predecessor and that one's answer.
    assert.match(await replies().last().innerText(), /\(turn 3\)/)
  })

  test('‹ › flips between the versions, and a reload keeps the one shown', async () => {
    await questions().last().locator('[data-test=branch-prev]').click()
    await showsBranch(['First question', 'Second question'])
    assert.equal(squash(await questions().last().locator('[data-test=branch-count]').innerText()), '1 / 2')
    await page.reload()
    await showsBranch(['First question', 'Second question'])

    // From the keyboard: focus › and press Enter.
    await questions().last().locator('[data-test=branch-next]').focus()
    await page.keyboard.press('Enter')
    await showsBranch(['First question', 'Second question, edited'])
    await page.reload()
    await showsBranch(['First question', 'Second question, edited'])

    // A question sent now follows the branch shown, and the model hears only it.
    await send('Third question')
    await showsBranch(['First question', 'Second question, edited', 'Third question'])
    assert.match(await replies().last().innerText(), /\(turn 5\)/)
  })

  test('regenerating an earlier reply starts a branch there; the old one is a step away', async () => {
    await replies().first().locator('[data-test=regenerate]').click()
    await showsBranch(['First question'])
    assert.equal(squash(await replies().first().locator('[data-test=branch-count]').innerText()), '2 / 2')
    await replies().first().locator('[data-test=branch-prev]').click()
    // Back to the older reply: its branch down to its newest message.
    await showsBranch(['First question', 'Second question, edited', 'Third question'])
    await page.reload()
    await showsBranch(['First question', 'Second question, edited', 'Third question'])
    assert.deepEqual(problems, [])
  })

  test('screenshots: the versions and the inline editor', async () => {
    const storageState = await context.storageState()
    for (const colorScheme of ['light', 'dark']) {
      for (const [device, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
        const shotContext = await browser.newContext({ viewport, colorScheme, storageState, deviceScaleFactor: 1 })
        const p = await shotContext.newPage()
        await p.goto(`${url}${chatPath}`)
        await showsBranch(['First question', 'Second question, edited', 'Third question'], p)
        await questions(p).nth(1).scrollIntoViewIfNeeded()
        await p.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-tree.png` })
        await questions(p).nth(1).locator('[data-test=edit]').click()
        await p.locator('[data-test=message-editor]').scrollIntoViewIfNeeded()
        await p.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-tree-edit.png` })
        await shotContext.close()
      }
    }
  })
})
