// Loads a `charrnn visualize` page in headless Chromium and reports, as JSON on
// stdout, what tests/it/visualize.rs checks: console and page errors, the colours
// before and after choosing another unit in the selector (and by clicking a
// listed unit), the hover tooltip, and a screenshot.
// usage: node visualize.mjs PAGE.html SCREENSHOT.png
import { chromium } from "playwright-core";
import { pathToFileURL } from "node:url";

const [page_path, shot_path] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") errors.push(`${m.type()}: ${m.text()}`); });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("requestfailed", (r) => errors.push(`requestfailed: ${r.url()}`));
  await page.goto(pathToFileURL(page_path).href, { waitUntil: "load" });

  const colours = () => page.$$eval("#text span", (s) => s.slice(0, 300).map((e) => e.style.backgroundColor));
  const before = { unit: await page.inputValue("#unit"), colours: await colours() };
  const options = await page.$$eval("#unit option", (o) => o.map((e) => e.value));
  const other = options.find((v) => v !== before.unit);
  await page.selectOption("#unit", other);
  const after = { unit: await page.inputValue("#unit"), colours: await colours() };

  // a listed unit's button selects that unit
  const button = await page.$(".feature button");
  let clicked = null;
  if (button) {
    const unit = await button.getAttribute("data-unit");
    await button.click();
    clicked = { unit, selected: await page.inputValue("#unit"), on: await button.evaluate((b) => b.classList.contains("on")) };
  }

  await page.hover("#text span:nth-child(5)");
  const tip = { visible: await page.isVisible("#tip"), text: await page.textContent("#tip"), rows: await page.$$eval("#tip tr", (r) => r.length) };
  await page.mouse.move(0, 0);
  await page.screenshot({ path: shot_path });
  console.log(JSON.stringify({ errors, options: options.length, before, after, clicked, tip }));
} finally {
  await browser.close();
}
