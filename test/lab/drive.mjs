#!/usr/bin/env node
// Drive the real JupyterLab (served by lab_server.py) in headless Debian Chromium with playwright-core:
// open a notebook, Run All through the Run menu, wait for the kernel, screenshot, probe the outputs
// (errors, Plotly and Vega-Lite drawn, titles inside their figures, progress updated in place), then
//  - scenario "tour": hover a Plotly heatmap and a Vega-Lite chart, TypeScript highlighting, Tab completion,
//    Shift+Tab tooltips, Contextual Help, kernel status, save + reload (trusted), the "library gone" note;
//  - scenario "ablation": interrupt a head sweep from the toolbar (idle again, nothing left applied), then
//    restart the kernel from the Kernel menu;
// writing report.json (every check with its detail) + PNGs. Run by test/lab.test.ts.
//
// usage: node drive.mjs --url http://127.0.0.1:PORT --nb attention-tour.ipynb --shots DIR --pw PLAYWRIGHT_DIR
//        [--scenario tour|ablation] [--timeout 600] [--full-shots]
// exit 0 when every check passed, 1 when a check failed, 2 on a harness error.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const BASE = opt('url', 'http://127.0.0.1:8899');
const NB = opt('nb', 'attention-tour.ipynb');
const SHOTS = opt('shots', '/tmp/jlab/shots');
const PW = opt('pw', '/tmp/jlab/app/node_modules/playwright-core');
const RUN_TIMEOUT = Number(opt('timeout', '600')) * 1000;
const SCENARIO = opt('scenario', 'tour');
const FULL_SHOTS = argv.includes('--full-shots');
fs.mkdirSync(SHOTS, { recursive: true });

const { chromium } = createRequire(import.meta.url)(PW);
const report = { url: BASE, notebook: NB, steps: [], checks: {}, console: [] };
const log = (...a) => {
  const line = a.map(x => (typeof x === 'string' ? x : JSON.stringify(x))).join(' ');
  console.log(line);
  report.steps.push(line);
};
const check = (name, ok, detail) => {
  report.checks[name] = { ok: !!ok, detail };
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail !== undefined ? ': ' + JSON.stringify(detail) : ''}`);
};
const shot = async (page, name, opts = {}) => {
  const p = path.join(SHOTS, name);
  await page.screenshot({ path: p, ...opts });
  log('screenshot', p);
  return p;
};

// ---- page-side helpers (run inside the browser) ----
const NB_STATE = () => {
  const app = window.jupyterapp;
  const w = window.__nb || (app && app.shell.currentWidget);
  if (!w || !w.content || !w.content.model || !w.sessionContext) return { ready: false };
  const cells = [];
  const m = w.content.model;
  for (let i = 0; i < m.cells.length; i++) {
    const c = m.cells.get(i);
    const e = { i, type: c.type, trusted: c.trusted };
    if (c.type === 'code') {
      e.exec = c.executionCount;
      e.outputs = c.outputs.toJSON().map(o => ({
        t: o.output_type,
        name: o.name,
        ename: o.ename,
        evalue: o.evalue,
        mimes: o.data ? Object.keys(o.data) : undefined,
        text: o.text ? String(o.text).slice(0, 300) : o.data && o.data['text/plain'] ? String(o.data['text/plain']).slice(0, 200) : undefined
      }));
    }
    cells.push(e);
  }
  const prompts = [...w.content.node.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return {
    ready: true,
    title: w.title.label,
    kernelName: w.sessionContext.kernelDisplayName,
    kernelStatus: k ? k.status : null,
    connection: k ? k.connectionStatus : null,
    dirty: w.context.model.dirty,
    prompts,
    cells
  };
};

const DOM_PROBE = () => {
  const q = s => [...document.querySelectorAll(s)];
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  const outs = nb ? [...nb.querySelectorAll('.jp-OutputArea-output')] : [];
  const mimeCount = {};
  for (const o of outs) {
    const m = o.getAttribute('data-mime-type') || '?';
    mimeCount[m] = (mimeCount[m] || 0) + 1;
  }
  const statics = q('img.arrakis-static');
  return {
    mainSvg: q('svg.main-svg').length,
    plotlyDivs: q('.js-plotly-plot').length,
    arrakisPlots: q('.arrakis-plot').length,
    staticImgs: statics.length,
    staticImgsVisible: statics.filter(i => i.offsetParent !== null && getComputedStyle(i).display !== 'none').length,
    arrakisNotes: q('.arrakis-note').map(n => n.textContent.slice(0, 120)),
    vegaEmbeds: q('.vega-embed').length,
    vegaCanvases: q('.vega-embed canvas').length,
    vegaSvgs: q('.vega-embed svg.marks').length,
    stderrOutputs: q('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').map(n => n.textContent.slice(0, 300)),
    outputMimeCount: mimeCount,
    windowPlotly: typeof window.Plotly,
    statusBar: (document.querySelector('#jp-main-statusbar') || {}).textContent,
    trustStatus: (document.querySelector('.jp-StatusItem-trusted, .jp-StatusItem-untrusted') || {}).title || null,
    toolbarKernelStatus: (document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar-kernelStatus') || {}).title || null,
    toolbarKernelName: (document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar-kernelName') || {}).textContent || null
  };
};

async function waitRestored(page) {
  await page.waitForFunction(() => window.jupyterappRestored === true, null, { timeout: 120000 });
  // The news toast ("Would you like to receive official Jupyter news?") covers the corner: answer No.
  const no = page.locator('.Toastify button:text-is("No")');
  if (await no.count().catch(() => 0)) await no.first().click().catch(() => {});
}

async function waitNotebookIdle(page, timeoutMs) {
  // The notebook widget is current, its kernel is connected and idle, and no prompt shows [*].
  await page.waitForFunction(
    () => {
      const w = window.__nb || (window.jupyterapp && window.jupyterapp.shell.currentWidget);
      if (!w || !w.sessionContext || !w.sessionContext.session || !w.sessionContext.session.kernel) return false;
      const k = w.sessionContext.session.kernel;
      if (k.status !== 'idle' || k.connectionStatus !== 'connected') return false;
      return ![...w.content.node.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].some(p => p.textContent.includes('*'));
    },
    null,
    { timeout: timeoutMs, polling: 250 }
  );
}

/** After a page load: JupyterLab restored and its current widget a notebook, kept as window.__nb. */
async function waitNotebookOpen(page) {
  await waitRestored(page);
  await page.waitForFunction(() => {
    const w = window.jupyterapp.shell.currentWidget;
    if (w && w.content && w.content.model && w.sessionContext) { window.__nb = w; return true; }
    return false;
  }, null, { timeout: 60000 });
}

/** Makes a cell active in command mode: the first code cell whose source holds `text`, or (no text) the last cell. */
async function selectCell(page, text = null) {
  await page.evaluate(t => {
    const nb = window.__nb;
    window.jupyterapp.shell.activateById(nb.id);
    nb.content.activeCellIndex = t === null
      ? nb.content.widgets.length - 1
      : nb.content.widgets.findIndex(c => c.model.type === 'code' && window.__getSrc(c).includes(t));
    nb.content.mode = 'command';
    nb.content.activate();
  }, text);
}

/** Runs the active cell with Ctrl+Enter and waits until the kernel is idle again. */
async function runActiveCell(page, timeoutMs = 120000) {
  await page.keyboard.press('Control+Enter');
  await page.waitForTimeout(800);
  await waitNotebookIdle(page, timeoutMs);
}

/** Runs the first code cell whose source holds `text`, and gives its output time to draw. */
async function runCellByText(page, text) {
  await selectCell(page, text);
  await page.waitForTimeout(300);
  await runActiveCell(page);
  await page.waitForTimeout(1500);
}

/** Inserts a cell below the active one, types `code` into it as a user would, and runs it. */
async function typeNewCell(page, code) {
  await page.keyboard.press('b');
  await page.keyboard.press('Enter');
  await page.keyboard.type(code);
  await runActiveCell(page, 60000);
}

/** Ctrl+S, then waits (at most 30 s) until the notebook is no longer dirty. */
async function saveNotebook(page) {
  await page.keyboard.press('Control+s');
  await page.waitForFunction(() => window.__nb.context.model.dirty === false, null, { timeout: 30000 }).catch(() => {});
}

async function handleKernelDialog(page) {
  const dlg = page.locator('.jp-Dialog');
  if (await dlg.count()) {
    const text = await dlg.first().innerText();
    log('dialog shown:', text.slice(0, 200));
    await shot(page, 'dialog.png');
    const sel = dlg.locator('select');
    if (await sel.count()) {
      const opts = await sel.locator('option').allTextContents();
      const want = opts.find(o => o.includes('Arrakis'));
      if (want) await sel.selectOption({ label: want });
    }
    await dlg.locator('button.jp-mod-accept').first().click();
    return text;
  }
  return null;
}

async function fullNotebookShot(page, name) {
  // Whole-notebook pictures take seconds each on a busy machine: only with --full-shots.
  if (!FULL_SHOTS) return null;
  // JupyterLab scrolls inside the notebook, not the page: grow the viewport to the notebook's height.
  const vp = page.viewportSize();
  const h = await page.evaluate(() => {
    const p = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    if (!p) return 0;
    const ns = [p.querySelector('.jp-Notebook'), p.querySelector('.jp-WindowedPanel-outer'), p.querySelector('.jp-WindowedPanel-inner')];
    return Math.max(0, ...ns.filter(Boolean).map(n => Math.max(n.scrollHeight, n.getBoundingClientRect().height)));
  });
  const tall = Math.min(Math.max(h + 200, vp.height), 16000);
  await page.setViewportSize({ width: vp.width, height: tall });
  await page.waitForTimeout(1500);
  await page.evaluate(() => {
    for (const sel of ['.jp-Notebook', '.jp-WindowedPanel-outer']) {
      const n = document.querySelector(`.jp-NotebookPanel:not(.lm-mod-hidden) ${sel}`);
      if (n) n.scrollTop = 0;
    }
  });
  await page.waitForTimeout(500);
  const p = await shot(page, name);
  await page.setViewportSize(vp);
  await page.waitForTimeout(800);
  return { path: p, notebookHeight: h, shotHeight: tall };
}

/** The tour: hover, highlighting, completion and tooltips, status bar, save + reload, and the "library gone" case. */
async function tourSteps(page, context, after) {
  // 3. Hover a heatmap cell (Plotly) and a Vega-Lite mark.
  const plot = page.locator('.js-plotly-plot').first();
  if (await plot.count()) {
    await plot.scrollIntoViewIfNeeded();
    await page.waitForTimeout(500);
    const drag = plot.locator('.nsewdrag').first();
    const bb = await drag.boundingBox();
    let hover = null;
    if (bb) {
      for (const [fx, fy] of [[0.5, 0.5], [0.3, 0.7], [0.75, 0.25]]) {
        await page.mouse.move(bb.x + bb.width * fx, bb.y + bb.height * fy, { steps: 5 });
        await page.waitForTimeout(800);
        hover = await plot.evaluate(n => [...n.querySelectorAll('.hoverlayer .hovertext')].map(h => h.textContent));
        if (hover.length) break;
      }
    }
    const cellBox = await plot.boundingBox();
    await page.screenshot({ path: path.join(SHOTS, '06-hover-heatmap.png'), clip: { x: Math.max(0, cellBox.x - 10), y: Math.max(0, cellBox.y - 10), width: Math.min(cellBox.width + 20, 1400), height: cellBox.height + 20 } });
    log('screenshot', path.join(SHOTS, '06-hover-heatmap.png'));
    check('Plotly hover tooltip shows on a heatmap cell', hover && hover.length > 0, hover);
  } else {
    check('Plotly hover tooltip shows on a heatmap cell', false, 'no .js-plotly-plot');
  }
  const vega = page.locator('.vega-embed').first();
  if (await vega.count()) {
    await vega.scrollIntoViewIfNeeded();
    await page.waitForTimeout(500);
    const vb = await (vega.locator('canvas, svg.marks').first()).boundingBox();
    let vtip = null;
    for (let fx = 0.1; fx <= 0.9 && !vtip; fx += 0.1) {
      await page.mouse.move(vb.x + vb.width * fx, vb.y + vb.height * 0.75, { steps: 3 });
      await page.waitForTimeout(400);
      vtip = await page.evaluate(() => {
        const t = document.querySelector('#vg-tooltip-element.visible, .vg-tooltip.visible');
        return t ? t.textContent.slice(0, 200) : null;
      });
    }
    const box = await vega.boundingBox();
    await page.screenshot({ path: path.join(SHOTS, '07-hover-vega.png'), clip: { x: Math.max(0, box.x - 10), y: Math.max(0, box.y - 10), width: Math.min(box.width + 200, 1400 - Math.max(0, box.x - 10)), height: box.height + 60 } });
    log('screenshot', path.join(SHOTS, '07-hover-vega.png'));
    check('Vega-Lite tooltip shows on hover', !!vtip, vtip);
  }
  await page.mouse.move(5, 500);

  // 4. TypeScript syntax highlighting: the cells' mime type, and token colours in the `halves` cell
  //    (CodeMirror 5 in JupyterLab 3.6, CodeMirror 6 in 4.x).
  await page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell').filter({ hasText: 'function halves' }).first().scrollIntoViewIfNeeded().catch(() => {});
  await page.waitForTimeout(500);
  const hl = await page.evaluate(() => {
    const cell = window.__nb.content.widgets.find(c => window.__getSrc(c).includes('function halves'));
    if (!cell) return null;
    const root = cell.node.querySelector('.CodeMirror-code, .cm-content');
    const leaves = [...root.querySelectorAll('span')].filter(x => x.children.length === 0);
    const colorOf = w => {
      const x = leaves.find(l => l.textContent.trim() === w);
      return x ? getComputedStyle(x).color : null;
    };
    const base = getComputedStyle(root).color;
    const cm = cell.node.querySelector('.CodeMirror');
    return {
      mimeType: cell.model.mimeType,
      cm5Mode: cm && cm.CodeMirror ? cm.CodeMirror.getOption('mode') : undefined,
      baseColor: base,
      colors: { function: colorOf('function'), const: colorOf('const'), string: colorOf('string'), number: colorOf('number'), true: colorOf('true') },
      tokenSpans: leaves.length
    };
  });
  report.highlighting = hl;
  // (Type names: CodeMirror 5 in 3.6 colours them (cm-type); JupyterLab 4's highlight style leaves them plain.)
  check('TypeScript highlighting (editor mime type is TypeScript; keywords coloured)',
    hl && /typescript/.test(hl.mimeType) && hl.colors.function && hl.colors.function !== hl.baseColor, hl);
  const tsCell = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell').filter({ hasText: 'function halves' }).first();
  if (await tsCell.count()) {
    await tsCell.locator('.jp-InputArea').scrollIntoViewIfNeeded();
    await tsCell.locator('.jp-InputArea').screenshot({ path: path.join(SHOTS, '08-syntax-halves-cell.png') });
    log('screenshot', path.join(SHOTS, '08-syntax-halves-cell.png'));
  }

  // 5. Completion (Tab after `attention.att`), tooltip (Shift+Tab), Contextual Help, in a scratch cell at the end.
  await selectCell(page);
  await page.waitForTimeout(300);
  await page.keyboard.press('b'); // insert a cell below (command mode)
  await page.waitForTimeout(300);
  await page.keyboard.press('Enter'); // edit mode
  await page.keyboard.type('attention.att');
  await page.keyboard.press('Tab');
  let completer = null;
  try {
    await page.waitForSelector('.jp-Completer:not(.lm-mod-hidden) .jp-Completer-item', { timeout: 10000 });
    completer = await page.locator('.jp-Completer .jp-Completer-item').allTextContents();
  } catch {
    /* maybe a single match was inserted directly */
  }
  const cellText1 = await page.evaluate(() => window.__getSrc(window.__nb.content.activeCell));
  await shot(page, '09-completer.png');
  check('Tab completion after `attention.att`', (completer && completer.length > 0) || /attention\.att\w+/.test(cellText1), { items: completer, cellText: cellText1 });
  // Accept the first item with Enter, as a user would.
  if (completer && completer.length) {
    await page.keyboard.press('Enter');
    await page.waitForTimeout(300);
    report.completionAccepted = await page.evaluate(() => window.__getSrc(window.__nb.content.activeCell));
    log('after Enter on the completer:', report.completionAccepted);
  }
  await page.keyboard.press('Escape');
  await page.waitForTimeout(200);

  // Tooltip: Shift+Tab in edit mode, (a) right after "(" as in IPython, (b) with the cursor at the end of the name.
  const tooltipAt = async (code, label, file) => {
    await page.evaluate(code => {
      const nb = window.__nb;
      nb.content.mode = 'edit';
      const c = nb.content.activeCell;
      window.__setSrc(c, code);
      c.editor.focus();
      c.editor.setCursorPosition({ line: 0, column: code.length });
    }, code);
    await page.waitForTimeout(300);
    await page.keyboard.press('Shift+Tab');
    let tip = null;
    try {
      await page.waitForSelector('.jp-Tooltip', { timeout: 6000 });
      await page.waitForTimeout(500);
      tip = (await page.locator('.jp-Tooltip').first().innerText()).slice(0, 600);
    } catch {
      /* none */
    }
    await shot(page, file);
    log(`tooltip (${label}):`, tip ? tip.slice(0, 160) : null);
    await page.keyboard.press('Escape');
    await page.waitForTimeout(300);
    return tip;
  };
  const tipParen = await tooltipAt('attention.attentionPatterns(', 'after "("', '10a-tooltip-after-paren.png');
  const tipArgs = await tooltipAt('attention.attentionPatterns(text, 1, ', 'inside the arguments', '10b-tooltip-in-args.png');
  const tipName = await tooltipAt('attention.attentionPatterns', 'at the end of the name', '10c-tooltip-on-name.png');
  report.tooltips = { afterParen: tipParen, inArgs: tipArgs, onName: tipName };
  check('Shift+Tab tooltip with the cursor on the name', !!tipName && tipName.trim().length > 0, tipName);
  check('Shift+Tab tooltip right after "(" (IPython convention)', !!tipParen && tipParen.trim().length > 0, tipParen);
  check('Shift+Tab tooltip inside the call\'s arguments', !!tipArgs && tipArgs.trim().length > 0, tipArgs);

  // Contextual Help panel (inspector:open, Accel+I) follows the cursor.
  await page.evaluate(() => window.jupyterapp.commands.execute('inspector:open'));
  await page.waitForTimeout(500);
  await page.evaluate(() => {
    const nb = window.__nb;
    window.jupyterapp.shell.activateById(nb.id);
    nb.content.mode = 'edit';
    const c = nb.content.activeCell;
    c.editor.focus();
    window.__setSrc(c, 'model.los');
    c.editor.setCursorPosition({ line: 0, column: 'model.los'.length });
  });
  await page.keyboard.type('s');
  let inspector = null;
  try {
    await page.waitForFunction(() => {
      const n = document.querySelector('.jp-Inspector-content');
      return n && /loss/.test(n.textContent);
    }, null, { timeout: 10000 });
    inspector = (await page.locator('.jp-Inspector-content').first().innerText()).slice(0, 600);
  } catch {
    inspector = await page.evaluate(() => (document.querySelector('.jp-Inspector-content') || {}).textContent || null);
  }
  await shot(page, '11-contextual-help.png');
  report.contextualHelp = inspector;
  check('Contextual Help shows the kernel\'s inspection of `model.loss`', !!inspector && /loss/.test(inspector), inspector && inspector.slice(0, 300));
  // Close the inspector and delete the scratch cell (command mode d,d).
  await page.evaluate(() => {
    for (const w of window.__widgets('main')) if (w.id && w.id.includes('inspector')) w.close();
    const nb = window.__nb;
    window.jupyterapp.shell.activateById(nb.id);
    nb.content.mode = 'command';
    nb.content.activate();
  });
  await page.waitForTimeout(300);
  await page.keyboard.press('d');
  await page.keyboard.press('d');
  await page.waitForTimeout(500);
  const afterScratch = await page.evaluate(NB_STATE);
  log('cells after deleting the scratch cell', afterScratch.cells.length, '(before:', after.cells.length, ')');

  // 6. Status bar + toolbar at the end.
  await page.waitForTimeout(1000);
  const endState = await page.evaluate(NB_STATE);
  const endDom = await page.evaluate(DOM_PROBE);
  report.end = { kernelStatus: endState.kernelStatus, dom: endDom };
  await page.locator('#jp-main-statusbar').screenshot({ path: path.join(SHOTS, '12-statusbar.png') });
  const tb = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar');
  if (await tb.count()) await tb.screenshot({ path: path.join(SHOTS, '12-toolbar.png') });
  check('kernel idle at the end (session + status bar)', endState.kernelStatus === 'idle' && /\| Idle/.test(endDom.statusBar || ''), { session: endState.kernelStatus, statusBar: endDom.statusBar, toolbarKernel: endDom.toolbarKernelName });

  // 7. Save (Ctrl+S), then reload the page.
  await page.evaluate(() => { window.__nb.content.mode = 'command'; window.__nb.content.activate(); });
  await saveNotebook(page);
  await page.waitForTimeout(1000);
  log('saved; dirty =', await page.evaluate(() => window.__nb.context.model.dirty));
  await page.reload({ waitUntil: 'load' });
  await waitNotebookOpen(page);
  await handleKernelDialog(page);
  await waitNotebookIdle(page, 120000);
  await page.waitForTimeout(5000);
  const reload = await page.evaluate(NB_STATE);
  const reloadDom = await page.evaluate(DOM_PROBE);
  report.afterReload = { kernelStatus: reload.kernelStatus, prompts: reload.prompts, trustedCells: reload.cells.filter(c => c.trusted).length, cells: reload.cells.length, dom: reloadDom };
  log('after save + reload:', report.afterReload);
  await shot(page, '13-reloaded-top.png');
  report.afterReload.full = await fullNotebookShot(page, '14-reloaded-full.png');
  check('after save + reload: Plotly drawn (saved notebook signed => trusted)', reloadDom.mainSvg > 0, { mainSvg: reloadDom.mainSvg, trust: reloadDom.trustStatus, staticVisible: reloadDom.staticImgsVisible, notes: reloadDom.arrakisNotes });
  if (reloadDom.mainSvg === 0) {
    // Trust it through the command palette, as a user would.
    await page.keyboard.press('Control+Shift+c');
    await page.waitForTimeout(500);
    await page.keyboard.type('Trust Notebook');
    await page.waitForTimeout(500);
    await page.keyboard.press('Enter');
    await page.waitForTimeout(1000);
    const dlg = page.locator('.jp-Dialog');
    if (await dlg.count()) {
      report.trustDialog = (await dlg.first().innerText()).slice(0, 300);
      await shot(page, '15-trust-dialog.png');
      await dlg.locator('button.jp-mod-accept').first().click();
    }
    await page.waitForTimeout(4000);
    const trustedDom = await page.evaluate(DOM_PROBE);
    report.afterTrust = trustedDom;
    await shot(page, '16-after-trust.png');
    log('after Trust Notebook:', trustedDom);
  }

  // 8. "Library gone": Clear All Outputs, run only the induction-stripe cell (its output cannot carry the
  //    Plotly library: this kernel process shipped it already), save, open the notebook in a NEW tab
  //    (no window.Plotly there), see the static picture + note, then follow the note's advice.
  await page.click('.lm-MenuBar-itemLabel:text-is("Edit")');
  // 3.6: "Clear All Outputs"; 4.x: "Clear Outputs of All Cells".
  await page.click('.lm-Menu-itemLabel >> text=/^Clear (All Outputs|Outputs of All Cells)$/');
  await page.waitForTimeout(500);
  const STRIPE = 'attention.attentionPatterns(text, ind.layer, ind.head)';
  await runCellByText(page, STRIPE);
  const samePage = await page.evaluate(DOM_PROBE);
  log('after Clear All Outputs + re-running the stripe cell (same tab):', { mainSvg: samePage.mainSvg, notes: samePage.arrakisNotes });
  await saveNotebook(page);
  const page2 = await context.newPage();
  await page2.goto(`${BASE}/lab/tree/${NB}`, { waitUntil: 'load' });
  await waitNotebookOpen(page2);
  await waitNotebookIdle(page2, 120000);
  await page2.waitForTimeout(5000); // the note appears after 3 s without a library
  const newTab = await page2.evaluate(DOM_PROBE);
  report.libraryGone = { sameTab: { mainSvg: samePage.mainSvg, notes: samePage.arrakisNotes }, newTab: { mainSvg: newTab.mainSvg, staticVisible: newTab.staticImgsVisible, notes: newTab.arrakisNotes, windowPlotly: newTab.windowPlotly } };
  const stripeOut = page2.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell').filter({ hasText: STRIPE }).first().locator('.jp-Cell-outputWrapper');
  await stripeOut.scrollIntoViewIfNeeded();
  await stripeOut.screenshot({ path: path.join(SHOTS, '17-newtab-library-gone.png') });
  log('new tab, only output lacks the library:', report.libraryGone.newTab);
  check('library gone: static picture + note shown in a new tab', newTab.mainSvg === 0 && newTab.arrakisNotes.length > 0 && newTab.staticImgsVisible > 0, report.libraryGone.newTab);
  // Follow the note: display.resetPlotlyLibrary() in a new cell, then re-run the stripe cell.
  await selectCell(page2);
  await typeNewCell(page2, 'display.resetPlotlyLibrary()');
  const resetOut = await page2.evaluate(() => window.__nb.content.activeCell.model.outputs.toJSON());
  report.libraryGone.noteAdviceOutput = resetOut;
  await page2.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell').last().screenshot({ path: path.join(SHOTS, '18a-note-advice-cell.png') });
  check('the note\'s advice `display.resetPlotlyLibrary()` runs without error', !resetOut.some(o => o.output_type === 'error'), resetOut.map(o => o.output_type === 'error' ? `${o.ename}: ${o.evalue}` : o.output_type));
  // Re-runs the stripe cell in the new tab and records whether its figure is drawn.
  const rerunStripe = async key => {
    await runCellByText(page2, STRIPE);
    await page2.waitForTimeout(1500);
    const dom = await page2.evaluate(DOM_PROBE);
    report.libraryGone[key] = { mainSvg: dom.mainSvg, notes: dom.arrakisNotes, windowPlotly: dom.windowPlotly };
    return dom;
  };
  const fixed = await rerunStripe('afterNoteAdvice');
  check('library gone: the note\'s advice + re-run draws it again', fixed.mainSvg > 0, report.libraryGone.afterNoteAdvice);
  if (fixed.mainSvg === 0) {
    // The function exists in the display module of the package: import it from there.
    await page2.keyboard.press('Escape');
    await typeNewCell(page2, 'import { resetPlotlyLibrary } from "arrakis-ts/dist/src/display"; resetPlotlyLibrary();');
    const fixed2 = await rerunStripe('afterImportedReset');
    check('library gone: imported resetPlotlyLibrary() + re-run draws it again', fixed2.mainSvg > 0, report.libraryGone.afterImportedReset);
  }
  await stripeOut.scrollIntoViewIfNeeded();
  await stripeOut.screenshot({ path: path.join(SHOTS, '18-newtab-after-reset.png') });
  await page2.close();

}

/** Adds a cell below the last one holding `code`, runs it with Ctrl+Enter and waits until the kernel is idle. */
async function runNewCell(page, code, { wait = true } = {}) {
  await selectCell(page);
  await page.keyboard.press('b');
  await page.waitForTimeout(300);
  await page.evaluate(code => window.__setSrc(window.__nb.content.activeCell, code), code);
  if (!wait) {
    await page.keyboard.press('Control+Enter');
    return null;
  }
  await runActiveCell(page);
  return page.evaluate(() => {
    const m = window.__nb.content.activeCell.model;
    return { exec: m.executionCount, outputs: m.outputs.toJSON() };
  });
}

const resultText = cell => {
  const r = cell && cell.outputs.find(o => o.output_type === 'execute_result');
  return r ? String(r.data['text/plain']) : null;
};

/**
 * The ablation notebook, after Run All: a cell of head sweeps long enough to be interrupted, stopped with the
 * toolbar's interrupt button; the kernel must be idle again with nothing left applied to the model. Then the
 * kernel is restarted from the Kernel menu and must run cells again (with the prelude's objects).
 */
async function ablationSteps(page) {
  await page.evaluate(() => {
    window.__statuses = [];
    window.__nb.sessionContext.statusChanged.connect((_, s) => window.__statuses.push(s));
  });
  await runNewCell(page, 'for (let i = 0; i < 2000; i++) await attention.headAblationSweep(text);', { wait: false });
  // Running, with its progress output shown.
  await page.waitForFunction(() => window.__nb.sessionContext.session.kernel.status === 'busy' &&
    window.__nb.content.activeCell.model.outputs.length > 0, null, { timeout: 60000 }).catch(() => {});
  await page.waitForTimeout(2000);
  const before = await page.evaluate(() => ({ status: window.__nb.sessionContext.session.kernel.status, outputs: window.__nb.content.activeCell.model.outputs.length }));
  await shot(page, '20-sweep-running.png');
  const button = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]');
  const t0 = Date.now();
  await button.first().click();
  await waitNotebookIdle(page, 60000).catch(() => {});
  const seconds = (Date.now() - t0) / 1000;
  await page.waitForTimeout(500);
  const interrupted = await page.evaluate(() => ({
    status: window.__nb.sessionContext.session.kernel.status,
    outputs: window.__nb.content.activeCell.model.outputs.toJSON().map(o => ({ t: o.output_type, ename: o.ename, evalue: o.evalue, text: o.data ? String(o.data['text/plain']).slice(0, 160) : undefined }))
  }));
  await shot(page, '21-after-interrupt.png');
  report.interrupt = { before, seconds, ...interrupted };
  check('toolbar interrupt during a sweep: the kernel is idle again', before.status === 'busy' && interrupted.status === 'idle', { before, after: interrupted.status, seconds });
  check('the interrupted sweep cell ends with an InterruptError', interrupted.outputs.some(o => o.t === 'error' && o.ename === 'InterruptError'), interrupted.outputs);
  const ledger = await runNewCell(page, 'JSON.stringify({ hooks: model.hookCount, edits: model.edits.active.length, ablations: attention.active.length })');
  let state = null;
  try { state = JSON.parse((resultText(ledger) || '').replace(/^'(.*)'$/s, '$1')); } catch { state = resultText(ledger); }
  report.afterInterrupt = state;
  check('after the interrupt no ablation stays applied (model.hookCount 0, edit ledger empty)', state && state.hooks === 0 && state.edits === 0 && state.ablations === 0, { state, outputs: ledger && ledger.outputs });

  // Restart from the Kernel menu (Lab 4: "Restart Kernel…", then the dialog's Restart button).
  await page.evaluate(() => { window.__statuses = []; });
  await page.click('.lm-MenuBar-itemLabel:text-is("Kernel")');
  await page.click('.lm-Menu-itemLabel >> text=/^Restart Kernel(…|\\.\\.\\.)?$/');
  const dlg = page.locator('.jp-Dialog');
  await dlg.waitFor({ timeout: 10000 });
  report.restartDialog = (await dlg.first().innerText()).slice(0, 200);
  await shot(page, '22-restart-dialog.png');
  await dlg.locator('button.jp-mod-accept').first().click();
  await page.waitForFunction(() => window.__statuses.includes('restarting') || window.__statuses.includes('starting'), null, { timeout: 30000 }).catch(() => {});
  await waitNotebookIdle(page, 120000);
  const statuses = await page.evaluate(() => window.__statuses.slice());
  const fresh = await runNewCell(page, 'model.hookCount');
  report.restart = { statuses, fresh };
  await shot(page, '23-after-restart.png');
  check('restart from the Kernel menu: the kernel restarts and runs cells again (count back to 1, prelude loaded)',
    statuses.includes('restarting') && fresh && fresh.exec === 1 && resultText(fresh) === '0' && !fresh.outputs.some(o => o.output_type === 'error'),
    { statuses, exec: fresh && fresh.exec, outputs: fresh && fresh.outputs });
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking']
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  // Version-neutral helpers (JupyterLab 3.x: model.value.text, Lumino 1 iterators; 4.x: sharedModel, native iterators).
  await context.addInitScript(() => {
    window.__getSrc = c => (c.model.sharedModel && c.model.sharedModel.getSource ? c.model.sharedModel.getSource() : c.model.value.text);
    window.__setSrc = (c, t) => {
      if (c.model.sharedModel && c.model.sharedModel.setSource) c.model.sharedModel.setSource(t);
      else c.model.value.text = t;
    };
    window.__widgets = area => {
      const it = window.jupyterapp.shell.widgets(area);
      if (it && typeof it[Symbol.iterator] === 'function') return Array.from(it);
      const a = [];
      for (let w = it.next(); w; w = it.next()) a.push(w);
      return a;
    };
  });
  const page = await context.newPage();
  page.on('console', m => {
    if (['error', 'warning'].includes(m.type())) report.console.push(`${m.type()}: ${m.text().slice(0, 400)}`);
  });
  page.on('pageerror', e => report.console.push(`pageerror: ${e.message.slice(0, 400)}`));
  page.on('response', r => {
    if (r.status() >= 400) report.console.push(`HTTP ${r.status()} ${r.url()}`);
  });

  // 1. Open the notebook (as committed: outputs from disk, not trusted).
  // ?reset: a fresh workspace, so no tab of an earlier scenario is restored and takes the focus.
  log('open', `${BASE}/lab/tree/${NB}?reset`);
  await page.goto(`${BASE}/lab/tree/${NB}?reset`, { waitUntil: 'load' });
  await waitNotebookOpen(page);
  await page.waitForTimeout(1500);
  const dialog1 = await handleKernelDialog(page);
  report.kernelDialogOnOpen = dialog1;
  await waitNotebookIdle(page, 120000);
  await page.waitForTimeout(4000); // let any Plotly draw (it would only if trusted)
  const open = await page.evaluate(NB_STATE);
  const openDom = await page.evaluate(DOM_PROBE);
  report.onOpen = { kernelName: open.kernelName, kernelStatus: open.kernelStatus, dom: openDom };
  log('opened: kernel', open.kernelName, open.kernelStatus, 'dom', openDom);
  await shot(page, '01-opened-untrusted.png');
  report.onOpen.full = await fullNotebookShot(page, '01b-opened-untrusted-full.png');

  // 2. Run All from the Run menu; log the progress output's texts as they change.
  await page.evaluate(() => {
    window.__progressLog = [];
    const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
    const rec = () => {
      const cells = [...nb.querySelectorAll('.jp-Cell')];
      cells.forEach((c, ci) => {
        const outs = [...c.querySelectorAll('.jp-OutputArea-output')].filter(o => /\d+\/\d+ \(\d+%\)/.test(o.textContent));
        if (!outs.length) return;
        const entry = `${ci}|${outs.length}|${outs.map(o => o.textContent.trim()).join(' || ')}`;
        const last = window.__progressLog[window.__progressLog.length - 1];
        if (!last || last.e !== entry) window.__progressLog.push({ t: performance.now(), e: entry });
      });
    };
    window.__progressObs = new MutationObserver(rec);
    window.__progressObs.observe(nb, { childList: true, subtree: true, characterData: true, attributes: true });
  });
  const t0 = Date.now();
  await page.click('.lm-MenuBar-itemLabel:text-is("Run")');
  await page.waitForSelector('.lm-Menu-itemLabel:text-is("Run All Cells")');
  await shot(page, '02-run-menu.png');
  await page.click('.lm-Menu-itemLabel:text-is("Run All Cells")');
  await page.waitForTimeout(1500);
  await handleKernelDialog(page);
  await shot(page, '03-running.png');
  // Snapshot while running (every ~3 s, up to 4 shots), then wait for the end.
  for (let i = 0; i < 4; i++) {
    const busy = await page.evaluate(() => [...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*')));
    if (!busy) break;
    await page.waitForTimeout(3000);
    await shot(page, `03-running-${i}.png`);
  }
  await waitNotebookIdle(page, RUN_TIMEOUT);
  report.runAllSeconds = (Date.now() - t0) / 1000;
  await page.waitForTimeout(3000);
  const progressLog = await page.evaluate(() => {
    window.__progressObs.disconnect();
    return window.__progressLog.map(x => x.e);
  });
  report.progressLog = progressLog;
  log('Run All finished in', report.runAllSeconds, 's; progress states seen:', progressLog.length);

  const after = await page.evaluate(NB_STATE);
  const afterDom = await page.evaluate(DOM_PROBE);
  report.afterRun = { state: after, dom: afterDom };
  const codeCells = after.cells.filter(c => c.type === 'code');
  const errors = codeCells.flatMap(c => c.outputs.filter(o => o.t === 'error' || (o.t === 'stream' && o.name === 'stderr')).map(o => ({ cell: c.i, ...o })));
  check('all code cells executed', codeCells.every(c => c.exec != null), codeCells.map(c => c.exec));
  check('execution counts in order', codeCells.every((c, k) => k === 0 || c.exec > codeCells[k - 1].exec), after.prompts);
  check('no error/stderr outputs (model)', errors.length === 0, errors);
  check('no stderr-rendered outputs (DOM)', afterDom.stderrOutputs.length === 0, afterDom.stderrOutputs);
  check('Plotly drawn (svg.main-svg present)', afterDom.mainSvg > 0, { mainSvg: afterDom.mainSvg, plotlyDivs: afterDom.plotlyDivs, arrakisPlots: afterDom.arrakisPlots, staticVisible: afterDom.staticImgsVisible });
  check('every Plotly output drawn', afterDom.plotlyDivs === afterDom.arrakisPlots && afterDom.arrakisPlots > 0, { plotlyDivs: afterDom.plotlyDivs, arrakisPlots: afterDom.arrakisPlots });
  // Which renderer JupyterLab picked for the Vega-Lite bundles (vegalite.v5 + image/png + text/plain).
  const vegaPick = await page.evaluate(() => {
    const cells = window.__nb.content.widgets;
    const r = [];
    cells.forEach((c, i) => {
      if (c.model.type !== 'code') return;
      const outs = c.model.outputs.toJSON();
      outs.forEach((o, k) => {
        if (o.data && Object.keys(o.data).some(m => m.startsWith('application/vnd.vegalite'))) {
          const nodes = c.node.querySelectorAll('.jp-OutputArea-output');
          const n = nodes[k];
          // 3.6 sets data-mime-type on the output node; 4.x leaves it off for the vega renderer.
          const rendered = !n ? null : n.getAttribute('data-mime-type') || (n.querySelector('.vega-embed') ? 'vega-embed' : n.querySelector('img') ? 'img' : null);
          r.push({ cell: i, bundle: Object.keys(o.data), rendered });
        }
      });
    });
    return r;
  });
  report.vegaRendered = vegaPick;
  check('Vega-Lite outputs visible (interactive, or the PNG fallback)', vegaPick.length > 0 && vegaPick.every(v => v.rendered && /vegalite|vega-embed|image\/png|img/.test(v.rendered)), vegaPick);
  check('Vega-Lite drawn interactively (needs a vegalite.v5 renderer)', afterDom.vegaEmbeds > 0 && afterDom.vegaCanvases + afterDom.vegaSvgs >= afterDom.vegaEmbeds, { embeds: afterDom.vegaEmbeds, canvases: afterDom.vegaCanvases, svgs: afterDom.vegaSvgs, rendered: vegaPick.map(v => v.rendered) });
  // The sweep's progress: one output rewritten in place (every state seen had one), ending as one line: a
  // summary ("✓ … 4/4 done in 0.9 s") or the bar at 100 %.
  const sweepIndex = await page.evaluate(() => window.__nb.content.widgets.findIndex(c => c.model.type === 'code' && /headAblationSweep\(/.test(window.__getSrc(c))));
  const sweep = codeCells.find(c => c.i === sweepIndex);
  const finalProgress = sweep ? sweep.outputs.filter(o => o.t === 'display_data') : [];
  const inPlace = progressLog.filter(e => e.startsWith(`${sweepIndex}|`));
  check('progress updated in place (one output while running, one line at the end)',
    sweep && finalProgress.length === 1 && /done|\(100%\)/.test(finalProgress[0].text) && inPlace.every(e => e.split('|')[1] === '1'),
    { cell: sweepIndex, finalOutputs: finalProgress.map(o => o.text), states: inPlace.slice(0, 12) });
  check('kernel idle at the end', after.kernelStatus === 'idle', { session: after.kernelStatus, statusBar: afterDom.statusBar, toolbar: afterDom.toolbarKernelStatus, kernelName: afterDom.toolbarKernelName });

  await shot(page, '04-after-run-top.png');
  report.afterRun.full = await fullNotebookShot(page, '05-after-run-full.png');

  // Per-cell output screenshots.
  const nCells = await page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').count();
  report.cellShots = [];
  const titles = { checked: 0, cut: [] };
  for (let i = 0; i < nCells; i++) {
    const cell = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').nth(i);
    if (!(await cell.evaluate(n => n.classList.contains('jp-CodeCell')))) continue;
    const out = cell.locator('.jp-Cell-outputWrapper');
    if (!(await out.count()) || (await out.boundingBox()) === null || (await out.boundingBox()).height < 5) continue;
    const p = path.join(SHOTS, `cell-${String(i).padStart(2, '0')}-output.png`);
    await out.scrollIntoViewIfNeeded();
    await page.waitForTimeout(300);
    await out.screenshot({ path: p });
    report.cellShots.push(p);
    // Plotly clips a title at the figure's edge: measured here, where the cell is on screen and laid out.
    const cut = await out.evaluate(n => [...n.querySelectorAll('.js-plotly-plot')].map(plot => {
      const svg = plot.querySelector('svg.main-svg');
      const title = plot.querySelector('.g-gtitle text');
      if (!svg || !title) return null;
      const a = svg.getBoundingClientRect();
      const b = title.getBoundingClientRect();
      return b.right > a.right + 1 || b.left < a.left - 1 ? { title: title.textContent.slice(0, 90), pxOver: Math.round(b.right - a.right) } : null;
    }).filter(Boolean));
    titles.checked += await out.evaluate(n => n.querySelectorAll('.js-plotly-plot .g-gtitle text').length);
    titles.cut.push(...cut.map(c => ({ cell: i, ...c })));
  }
  log('cell output shots', report.cellShots.length);
  check('Plotly titles inside their figures (none cut)', titles.checked > 0 && titles.cut.length === 0, titles);

  if (SCENARIO === 'ablation') await ablationSteps(page);
  else await tourSteps(page, context, after);

  await browser.close();
  fs.writeFileSync(path.join(SHOTS, 'report.json'), JSON.stringify(report, null, 2));
  const failed = Object.entries(report.checks).filter(([, v]) => !v.ok).map(([k]) => k);
  console.log(`\n${Object.keys(report.checks).length - failed.length} passed, ${failed.length} failed`);
  if (failed.length) console.log('failed:', failed.join('; '));
  console.log('report:', path.join(SHOTS, 'report.json'));
  return failed.length ? 1 : 0;
}

main().then(
  code => process.exit(code),
  err => {
    console.error('harness error:', err);
    try {
      fs.writeFileSync(path.join(SHOTS, 'report.json'), JSON.stringify({ ...report, harnessError: String(err && err.stack) }, null, 2));
    } catch {}
    process.exit(2);
  }
);
