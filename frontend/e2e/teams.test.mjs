// Teams in the browser: an admin invites a user on an invite-only server, the user signs up
// with the link, the admin limits and then disables them (the user is signed out at once),
// and the settings page; screenshots of the new screens. Run: node --test e2e/teams.test.mjs
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { PASSWORD, ROOT, launchBrowser, stackDown, stackUp, submitSignUp, waitUntil } from './harness.mjs'

const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }
const SHOTS = resolve(ROOT, process.env.E2E_SCREENSHOT_DIR || 'frontend/e2e/.artifacts/screenshots')
const ADMIN = 'admin@example.com'
const MEMBER = 'grace@example.com'

let stack
let browser
let url
let adminContext
let admin
let memberContext
let member
let inviteUrl
const problems = []

function watch(p) {
  p.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  p.on('dialog', (dialog) => {
    problems.push(`dialog opened: ${dialog.message()}`)
    void dialog.dismiss()
  })
  return p
}

const row = (p, email) => p.locator(`[data-test="user-${email}"]`)

before(async () => {
  stack = await stackUp({ ALLOW_REGISTRATION: 'invite' })
  url = stack.url
  await mkdir(SHOTS, { recursive: true })
  browser = await launchBrowser()
  adminContext = await browser.newContext({ viewport: DESKTOP })
  admin = watch(await adminContext.newPage())
  memberContext = await browser.newContext({ viewport: DESKTOP })
  member = watch(await memberContext.newPage())
})

after(async () => {
  await browser?.close()
  if (stack) await stackDown(stack.name)
})

describe('an admin brings a user in, limits them and shuts them out', () => {
  test('the first account needs no invite and is the admin', async () => {
    await submitSignUp(admin, url, ADMIN)
    await admin.waitForURL(`${url}/`)
    await admin.click('[data-test=admin-users-link]')
    await admin.waitForURL(`${url}/admin/users`)
    await row(admin, ADMIN).waitFor()
  })

  test('without an invite, sign-up is refused', async () => {
    await submitSignUp(member, url, MEMBER)
    const error = member.locator('.form-error[role=alert]')
    await error.waitFor()
    assert.match(await error.innerText(), /invite/i)
  })

  test('the admin makes an invite link and the user signs up with it', async () => {
    await admin.fill('[data-test=invite-email]', MEMBER)
    await admin.click('[data-test=invite-create]')
    const link = admin.locator('[data-test=invite-url]')
    await link.waitFor()
    inviteUrl = await link.inputValue()
    assert.match(inviteUrl, /\/signup\?invite=/)
    const path = new URL(inviteUrl).pathname + new URL(inviteUrl).search
    await submitSignUp(member, url, MEMBER, path)
    await member.waitForURL(`${url}/`)
    // Single use: the same link again refuses a second account.
    const stranger = watch(await (await browser.newContext()).newPage())
    await submitSignUp(stranger, url, 'mallory@example.com', path)
    await stranger.locator('.form-error[role=alert]').waitFor()
    assert.equal(new URL(stranger.url()).pathname, '/signup')
    await stranger.context().close()
    await admin.reload()
    await row(admin, MEMBER).waitFor()
    const invite = admin.locator('[data-test=invite]').first()
    assert.match(await invite.innerText(), /used/)
    assert.match(await invite.innerText(), new RegExp(MEMBER))
  })

  test('the admin sets daily limits on the user', async () => {
    await row(admin, MEMBER).locator('[data-test=user-limits-edit]').click()
    await admin.fill('[data-test=limit-messages]', '25')
    await admin.fill('[data-test=limit-tokens]', '50000')
    const saved = admin.waitForResponse((r) => r.url().includes('/api/admin/users/') && r.request().method() === 'PATCH')
    await admin.click('[data-test=limits-save]')
    const answer = await saved
    assert.equal(answer.status(), 200)
    assert.deepEqual(JSON.parse(answer.request().postData()).limits, { messages_per_day: 25, tokens_per_day: 50000 })
    await admin.locator('[data-test=audit-entry]', { hasText: 'set the limits of' }).waitFor()
  })

  test('disabling the user signs them out at once', async () => {
    await member.goto(`${url}/account`)
    await member.locator('[data-test=account-sessions] [data-test=session]').first().waitFor()
    await row(admin, MEMBER).locator('[data-test=user-disable]').click()
    await row(admin, MEMBER).locator('[data-test=user-disabled]').waitFor()
    // Any call of theirs now answers 401 and the app sends them to sign in.
    await member.reload()
    await waitUntil(async () => new URL(member.url()).pathname === '/signin', 'the disabled user to be at the sign-in page', 10_000)
    await member.fill('input[name=email]', MEMBER)
    await member.fill('input[name=password]', PASSWORD)
    await member.click('button[type=submit]')
    const error = member.locator('.form-error[role=alert]')
    await error.waitFor()
    assert.match(await error.innerText(), /disabled/)
    await admin.locator('[data-test=audit-entry]', { hasText: 'disabled' }).waitFor()
  })

  test('delete asks first', async () => {
    await row(admin, MEMBER).locator('[data-test=user-delete]').click()
    await admin.locator('[role=alertdialog]').waitFor()
    await admin.keyboard.press('Escape')
    await row(admin, MEMBER).waitFor()
  })

  test('no page error', () => {
    assert.deepEqual(problems, [])
  })
})

describe('screenshots', () => {
  test('users page, settings page and invite sign-up at desktop and phone width, light and dark', async () => {
    await row(admin, MEMBER).locator('[data-test=user-reset]').click()
    await admin.locator('[data-test=reset-url]').waitFor()
    const storageState = await adminContext.storageState()
    for (const colorScheme of ['light', 'dark']) {
      for (const [device, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
        const context = await browser.newContext({ viewport, colorScheme, storageState, deviceScaleFactor: 1 })
        const p = watch(await context.newPage())
        const shot = (name) => p.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-teams-${name}.png` })
        await p.goto(`${url}/admin/users`)
        await row(p, MEMBER).waitFor()
        await p.locator('[data-test=audit-entry]').first().waitFor()
        await p.setViewportSize({ width: viewport.width, height: 1500 })
        await shot('users')
        await p.setViewportSize(viewport)
        await p.goto(`${url}/account`)
        await p.locator('[data-test=session]').first().waitFor()
        await p.setViewportSize({ width: viewport.width, height: 1300 })
        await shot('settings')
        await context.close()
        const guest = await browser.newContext({ viewport, colorScheme })
        const g = watch(await guest.newPage())
        await g.goto(inviteUrl)
        await g.locator('input[name=email]').waitFor()
        await g.screenshot({ path: `${SHOTS}/${device}-${colorScheme}-teams-invite-signup.png` })
        await guest.close()
      }
    }
    assert.deepEqual(problems, [])
  })
})
