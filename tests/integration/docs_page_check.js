#!/usr/bin/env node
// Renders the server's /docs page in a DOM (jsdom, from tests/package.json)
// for tests/integration/test_api_contract.py:
//
//   node docs_page_check.js http://127.0.0.1:PORT
//
// Prints JSON: {error, operations: [{id, method, path, permission, roles}],
// params, bodies, examples, matches} where `matches` is how many operations
// stay visible after filtering by "read_only_designer". The page's script
// runs as in a browser; it may only fetch from the same server.
'use strict';

const { JSDOM } = require('jsdom');

async function main() {
  const base = process.argv[2];
  const html = await (await fetch(base + '/docs')).text();
  const dom = new JSDOM(html, {
    url: base + '/docs',
    runScripts: 'dangerously',
    pretendToBeVisual: true,
    beforeParse(window) {
      window.fetch = (url, opts) => {
        const target = new URL(url, base + '/docs');
        if (target.origin !== new URL(base).origin) return Promise.reject(new Error('outside fetch: ' + target));
        return fetch(target, opts);
      };
      window.CSS = { escape: (s) => String(s).replace(/[^a-zA-Z0-9_-]/g, (c) => '\\' + c) };
    },
  });
  const doc = dom.window.document;
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline && !doc.querySelector('details.op[data-search]') && !doc.getElementById('error')) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const ops = [...doc.querySelectorAll('details.op[data-search]')].map((d) => {
    const s = d.querySelector('summary');
    const text = d.querySelector('.body').textContent;
    return {
      id: d.id,
      method: s.querySelector('.method').textContent,
      path: s.querySelector('.path').textContent,
      permission: s.querySelector('.perm').textContent,
      hasParams: text.includes('Parameters'),
      hasBody: text.includes('Request body'),
      hasExample: d.querySelectorAll('pre').length > 0,
      responses: [...d.querySelectorAll('details.resp .status')].map((e) => e.textContent),
      roles: d.querySelector('.perm-line .roles') ? d.querySelector('.perm-line .roles').textContent : null,
    };
  });
  const filter = doc.getElementById('filter');
  filter.value = 'read_only_designer';
  filter.dispatchEvent(new dom.window.Event('input'));
  const matches = [...doc.querySelectorAll('details.op[data-search]')].filter((d) => d.style.display !== 'none').length;
  const err = doc.getElementById('error');
  process.stdout.write(JSON.stringify({ error: err ? err.textContent : null, operations: ops, matches }) + '\n');
  dom.window.close();
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e.stack || e) }) + '\n');
  process.exitCode = 1;
});
