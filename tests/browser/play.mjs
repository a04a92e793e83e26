// Loads `charrnn export --format html` pages in headless Chromium and reports, as
// JSON on stdout, what tests/it/play.rs checks: for each page the next-character
// probabilities after each prime, two seeded draws with one seed and one with
// another, and any console or page errors (for a page that refuses its model,
// the note it shows instead); on the first page also the user's
// path: Generate streams text, Pause stops it, Resume finishes it, hover shows the
// guesses, a unit colours the text, and a screenshot.
// usage: node play.mjs JOB.json   (JOB: {"pages": [...], "primes": [...], "shot": PATH})
import { chromium } from "playwright-core";
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const results = [];
try {
  for (const [n, path] of job.pages.entries()) {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors = [];
    page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") errors.push(`${m.type()}: ${m.text()}`); });
    page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
    page.on("requestfailed", (r) => errors.push(`requestfailed: ${r.url()}`));
    const requests = [];
    page.on("request", (r) => { if (!r.url().startsWith("file:")) requests.push(r.url()); });
    await page.goto(pathToFileURL(path).href, { waitUntil: "load" });
    if (!(await page.evaluate(() => typeof window.charrnn === "object"))) {
      // a page that refused its model: what it told the user
      results.push({ path, errors, runs: false, note: await page.textContent("#note") });
      await page.close();
      continue;
    }
    const probs = await page.evaluate((primes) => primes.map((p) => window.charrnn.probs(p)), job.primes);
    const draws = await page.evaluate(() => [
      window.charrnn.sample("The ", 200, 7, { temperature: 0.9, topK: 10, topP: 0.95 }),
      window.charrnn.sample("The ", 200, 7, { temperature: 0.9, topK: 10, topP: 0.95 }),
      window.charrnn.sample("The ", 200, 8, { temperature: 0.9, topK: 10, topP: 0.95 }),
    ]);
    const result = { path, errors, requests, probs, draws };
    if (n === 0) {
      await page.fill("#prime", "The ");
      await page.fill("#length", "3000");
      await page.fill("#seed", "3");
      // Pause in the same task as Generate: a small model draws 3000 characters
      // within its first 15 ms slice, so a later click could find it done
      await page.evaluate(() => { document.querySelector("#generate").click(); document.querySelector("#pause").click(); });
      const paused = await page.$$eval("#out span", (s) => s.length);
      await page.waitForTimeout(300);
      const stillPaused = await page.$$eval("#out span", (s) => s.length);
      await page.click("#pause");
      await page.waitForFunction(() => document.body.dataset.done === "1", null, { timeout: 60000 });
      const text = await page.$$eval("#out span", (s) => s.map((e) => e.textContent).join(""));
      await page.hover("#out span:nth-child(12)");
      const tip = { visible: await page.isVisible("#tip"), rows: await page.$$eval("#tip tr", (r) => r.length), text: await page.textContent("#tip") };
      await page.mouse.move(0, 0);
      const options = await page.$$eval("#unit option", (o) => o.map((e) => e.value));
      await page.selectOption("#unit", options[1]);
      const coloured = await page.$$eval("#out span", (s) => s.slice(0, 300).filter((e) => e.style.backgroundColor !== "").length);
      await page.screenshot({ path: job.shot });
      Object.assign(result, { paused, stillPaused, text, tip, coloured,
                              same_seed: await page.evaluate(() => window.charrnn.sample("The ", 3000, 3)) });
    }
    results.push(result);
    await page.close();
  }
  console.log(JSON.stringify(results));
} finally {
  await browser.close();
}
