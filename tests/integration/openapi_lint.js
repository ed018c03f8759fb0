#!/usr/bin/env node
// Lints an OpenAPI document for tests/integration/test_api_contract.py.
//
//   node openapi_lint.js DOC.json [SAMPLES.json]
//
// 1. @apidevtools/swagger-parser validates it against the official OpenAPI
//    schema and resolves every $ref (offline: the document is local and
//    self-contained).
// 2. Every example (request bodies, responses, parameters) must validate
//    against its own schema (ajv), so the examples cannot drift from the
//    schemas.
// 3. With SAMPLES.json ([{method, path, status, body}] of real answers),
//    each body must validate against the documented response schema of
//    that operation and status (or the "default" response).
//
// Prints one problem per line and exits 1 when there is any; the tools
// come from tests/package.json (scripts/install-deps installs them).
'use strict';

const fs = require('fs');
const SwaggerParser = require('@apidevtools/swagger-parser');
const Ajv = require('ajv');

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

// OpenAPI 3.0 Schema Objects are JSON Schema draft-04-ish with a few
// keywords of their own; ajv checks the rest. Formats are descriptive here.
function newAjv() {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  ajv.addKeyword({ keyword: 'example' });
  return ajv;
}

// OpenAPI 3.0's `nullable: true` as JSON Schema: type also allows null.
function toJsonSchema(schema) {
  if (Array.isArray(schema)) return schema.map(toJsonSchema);
  if (!schema || typeof schema !== 'object') return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'nullable') continue;
    out[k] = toJsonSchema(v);
  }
  if (schema.nullable === true) {
    if (out.type) out.type = [].concat(out.type, 'null');
    if (out.enum && !out.enum.includes(null)) out.enum = out.enum.concat([null]);
    if (!out.type && (out.allOf || out.oneOf || out.anyOf || out.$ref)) return { anyOf: [out, { type: 'null' }] };
  }
  return out;
}

function check(ajv, problems, where, schema, value) {
  if (!schema) return;
  let validate;
  try {
    validate = ajv.compile(toJsonSchema(schema));
  } catch (e) {
    problems.push(`${where}: the schema does not compile: ${e.message}`);
    return;
  }
  if (!validate(value)) {
    const errs = validate.errors.slice(0, 5).map((e) => {
      const extra = e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : '';
      return `${e.instancePath || '/'} ${e.message}${extra}`;
    });
    problems.push(`${where}: ${errs.join('; ')}`);
  }
}

function mediaExamples(media) {
  const out = [];
  if (media.example !== undefined) out.push(['example', media.example]);
  for (const [name, ex] of Object.entries(media.examples || {})) {
    if (ex && ex.value !== undefined) out.push([`examples.${name}`, ex.value]);
  }
  return out;
}

function lintExamples(ajv, api, problems) {
  for (const [path, item] of Object.entries(api.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const where = `${method.toUpperCase()} ${path}`;
      for (const p of [].concat(item.parameters || [], op.parameters || [])) {
        if (p.example !== undefined) check(ajv, problems, `${where} parameter ${p.name} example`, p.schema, p.example);
      }
      const body = op.requestBody && op.requestBody.content;
      for (const [type, media] of Object.entries(body || {})) {
        for (const [name, value] of mediaExamples(media)) {
          check(ajv, problems, `${where} request ${type} ${name}`, media.schema, value);
        }
      }
      for (const [status, resp] of Object.entries(op.responses || {})) {
        for (const [type, media] of Object.entries(resp.content || {})) {
          for (const [name, value] of mediaExamples(media)) {
            if (type.startsWith('application/json')) {
              check(ajv, problems, `${where} response ${status} ${name}`, media.schema, value);
            }
          }
        }
      }
    }
  }
}

// "/api/v1/runs/{id}" matches "/api/v1/runs/abc" -- samples carry the
// template already, so this is a plain lookup.
function lintSamples(ajv, api, samples, problems) {
  for (const smp of samples) {
    const where = `sample ${smp.method} ${smp.path} -> ${smp.status}`;
    const op = (api.paths[smp.path] || {})[smp.method.toLowerCase()];
    if (!op) {
      problems.push(`${where}: no such documented operation`);
      continue;
    }
    const resp = op.responses[String(smp.status)] || op.responses.default;
    if (!resp) {
      problems.push(`${where}: the status is not documented`);
      continue;
    }
    const media = resp.content && (resp.content['application/json'] || resp.content['application/json; charset=utf-8']);
    if (!media) continue;
    check(ajv, problems, where, media.schema, smp.body);
  }
}

async function main() {
  const [docPath, samplesPath] = process.argv.slice(2);
  if (!docPath) {
    process.stderr.write('usage: openapi_lint.js DOC.json [SAMPLES.json]\n');
    process.exitCode = 2;
    return;
  }
  const text = fs.readFileSync(docPath, 'utf8');
  const problems = [];
  try {
    await SwaggerParser.validate(JSON.parse(text));
  } catch (e) {
    // The first lines are enough: the same error repeats at every $ref use.
    const lines = e.message.split('\n');
    problems.push(`swagger-parser: ${lines.slice(0, 40).join('\n')}${lines.length > 40 ? '\n  ...' : ''}`);
  }
  let api;
  try {
    api = await SwaggerParser.dereference(JSON.parse(text));
  } catch (e) {
    problems.push(`dereference: ${e.message}`);
  }
  if (api) {
    const ajv = newAjv();
    lintExamples(ajv, api, problems);
    if (samplesPath) lintSamples(ajv, api, JSON.parse(fs.readFileSync(samplesPath, 'utf8')), problems);
  }
  // process.exit could cut a piped stdout short: set the status instead.
  process.stdout.write(problems.length ? problems.join('\n') + '\n' : 'ok\n');
  process.exitCode = problems.length ? 1 : 0;
}

main().catch((e) => {
  process.stdout.write(`openapi_lint: ${e.stack || e}\n`);
  process.exitCode = 1;
});
